"""priorities' section of the user summary: the user's requests, open ones first; staff get the staff links."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from priorities.models import PriorityMember, PriorityRequest, Status

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def request_of(user, status, **fields):
    return PriorityRequest.objects.create(
        requester=user, cluster="testcluster", account="def-owner", gpu_type="a100", gpu_count=2,
        start=timezone.now() + timedelta(days=1), duration_days=3, justification="x", ticket="T-1",
        status=status, **fields,
    )  # fmt: skip


def section(response):
    return next(i for i in response.context["sections"] if i.section.key == "priorities")


def test_open_requests_come_first_and_shared_ones_count(client, personas):
    expired = request_of(personas.owner, Status.EXPIRED)
    active = request_of(personas.owner, Status.ACTIVE, qos_name="prio-owner")
    shared = request_of(personas.member, Status.PENDING)
    PriorityMember.objects.create(request=shared, username="owner")
    client.force_login(personas.owner)
    item = section(client.get(reverse("usersummary:user", kwargs={"username": "owner"})))
    html = str(item.html)
    assert html.index("prio-owner") < html.index(str(expired.pk) + "</th>")
    assert f'<th scope="row">{shared.pk}</th>' in html
    assert item.link == reverse("priorities:index")
    assert active.pk


def test_staff_link_to_the_staff_panel_searching_the_user(client, personas):
    request_of(personas.owner, Status.PENDING)
    client.force_login(personas.staff)
    item = section(client.get(reverse("usersummary:user", kwargs={"username": "owner"})))
    assert item.link.startswith(reverse("priorities:staff") + "?q=owner")
    assert reverse("priorities:staff-detail", kwargs={"priority_id": PriorityRequest.objects.get().pk}) in item.html
