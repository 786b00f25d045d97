"""quotas' beat task run twice (a redelivered message): the second run changes nothing (tests/idempotency.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from idempotency import run_twice

from quotas.models import Quota, QuotaAlert, UsageSnapshot

pytestmark = pytest.mark.django_db(databases=["default", "slurm", "robinhood"])
TIB = 1024**4


def test_check_quotas_raises_and_mails_an_alert_once(robinhood, personas, settings, django_capture_on_commit_callbacks):
    settings.QUOTAS_ALERT_THRESHOLDS = [80, 90, 100]
    robinhood.add("owner", "def-owner", "", size=10_000, count=1000, blocks=2 * 1024**3)  # 1 TiB on disk
    Quota.objects.create(group="def-owner", bytes_limit=int(1.15 * TIB), inodes_limit=10**6)  # ~87 % used
    today = timezone.localdate()
    UsageSnapshot.objects.create(group="def-owner", day=today - timedelta(days=7), bytes_used=TIB // 2, inodes_used=1)
    first, second = run_twice("quotas.check_quotas", django_capture_on_commit_callbacks)
    assert (first["raised"], second["raised"]) == (["def-owner"], [])
    assert QuotaAlert.objects.get(group="def-owner").level == 80
    assert sorted(m.to[0] for m in mail.outbox) == ["member@example.org", "owner@example.org"]
