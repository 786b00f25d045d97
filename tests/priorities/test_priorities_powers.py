"""Plain staff read a GPU priority request; deciding or changing it needs the priority-decisions power."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse
from factories import StaffFactory

from priorities.models import PriorityRequest

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def plain(personas):
    return StaffFactory(username="plainstaff")


def powers_cmd(*args: str) -> None:
    call_command("staff_powers", *args, verbosity=0)


def test_plain_staff_read_a_priority_request_but_cannot_decide_it(client, plain, make_priority):
    priority = make_priority()
    client.force_login(plain)
    url = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    page = client.get(url)
    assert page.status_code == 200
    assert b'value="accept"' not in page.content
    assert client.post(url, {"action": "accept", "qos_name": "prio_x"}).status_code == 403
    assert PriorityRequest.objects.get(pk=priority.pk).status == "pending"
    powers_cmd("grant", "priority-decisions", "--user", "plainstaff")
    assert b'value="accept"' in client.get(url).content
    assert client.post(url, {"action": "accept", "qos_name": "prio_x"}).status_code == 302
