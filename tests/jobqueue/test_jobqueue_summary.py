"""jobqueue's section of the user summary: the token's expiry and the user's queued jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobqueue.models import Job, JobToken
from jobqueue.tokens import issue_token

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def section(client, username):
    response = client.get(reverse("usersummary:user", kwargs={"username": username}))
    return next(i for i in response.context["sections"] if i.section.key == "jobqueue")


def test_token_expiry_and_jobs(client, alice):
    token, _key = issue_token(alice, days=5)
    Job.objects.create(user=alice, competition_id="comp-1", project_id="p", expected_time=10, code="print(1)")
    client.force_login(alice)
    item = section(client, "alice")
    assert f"Token {token.prefix}… expires" in item.html
    assert "comp-1" in item.html
    assert "Pending: 1" in item.html
    assert item.link == reverse("jobqueue:index")


def test_an_expired_token_is_flagged(client, alice, admin_user):
    token, _key = issue_token(alice, days=1)
    JobToken.objects.filter(pk=token.pk).update(expires=timezone.now() - timedelta(hours=1))
    client.force_login(admin_user)
    item = section(client, "alice")
    assert "expired" in item.html
    assert "No queued job." in item.html
    assert item.link == reverse("jobqueue:dashboard")
