"""The staff timeline of reserved GPUs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from priorities.models import Status
from priorities.timeline import gpu_timeline, timeline_summary

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_timeline_counts_reserved_gpus_per_type(personas, make_priority, settings):
    settings.PRIORITIES_CLUSTER_GPUS = ["a100=4"]
    now = timezone.now()
    make_priority(status=Status.ACTIVE, start=now, days=2, gpu_count=2)
    make_priority(status=Status.ACCEPTED, start=now + timedelta(days=1), days=2, gpu_count=1)
    make_priority(status=Status.REFUSED, start=now, days=2, gpu_count=3)
    data = gpu_timeline(personas.slurm.cluster, at=now)
    (series,) = data["series"]
    assert series["capacity"] == 4
    assert max(series["y"]) == 3
    assert timeline_summary(data) == [{"gpu_type": "a100", "peak": 3, "capacity": 4}]
