"""The "my jobs" page with its submit form, and the staff dashboard."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from jobqueue_helpers import ML_CODE

from jobqueue.models import Job

pytestmark = pytest.mark.django_db


def test_my_jobs_page_submits_a_job(client, alice, bob):
    Job.objects.create(user=bob, competition_id="bobs", project_id="p", expected_time=5, code="x", executor="fake")
    client.force_login(alice)
    response = client.post(
        "/jobqueue/",
        {
            "code": SimpleUploadedFile("s.py", ML_CODE.encode()),
            "competition_id": "comp",
            "project_id": "proj",
            "expected_time": 30,
        },
    )
    assert response.status_code == 302
    page = client.get("/jobqueue/")
    assert [job.competition_id for job in page.context["jobs"]] == ["comp"]  # not bob's
    assert b"bobs" not in page.content


def test_my_jobs_page_shows_refusals(client, alice):
    client.force_login(alice)
    response = client.post(
        "/jobqueue/",
        {
            "code": SimpleUploadedFile("s.py", b"import subprocess\n"),
            "competition_id": "c",
            "project_id": "p",
            "expected_time": 30,
        },
    )
    assert response.status_code == 200
    assert "subprocess" in response.content.decode()
    assert not Job.objects.exists()


def test_dashboard_page_is_staff_only(client, alice, admin_user):
    client.force_login(alice)
    assert client.get("/jobqueue/dashboard/").status_code == 403
    client.force_login(admin_user)
    response = client.get("/jobqueue/dashboard/")
    assert response.status_code == 200
    assert b'id="jobqueue-dashboard"' in response.content
    assert b"<script>" not in response.content
