"""outreach's beat task run twice (a redelivered message): the second run changes nothing (tests/idempotency.py)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.cache import cache
from idempotency import run_twice

from outreach.models import SentReport

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])
GIB = 1024**3


def test_send_reports_mails_a_report_once(personas, settings, django_capture_on_commit_callbacks):
    settings.SLURM_CLUSTERS = ["testcluster"]
    settings.OUTREACH_CPU_MIN_CORE_HOURS = 4
    cache.clear()
    slurm = personas.slurm  # 8 cores for an hour, one minute of CPU
    job = slurm.job("owner", "def-owner", cpus_req=8, time_start=slurm.now - 3600 - 600, time_end=slurm.now - 600)
    slurm.step(job, user_sec=60, tres_usage_in_max=f"2={GIB // 2}")
    assert run_twice("outreach.send_reports", django_capture_on_commit_callbacks) == (1, 0)
    assert [m.to for m in mail.outbox] == [["owner@example.org"]]
    assert SentReport.objects.count() == 1
