"""scheduler against the stack: per-partition counts of started jobs cross-checked with sacct."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm"])]

DAYS = 90


@pytest.fixture
def staff(stack_dir):
    return get_user_model().objects.create_user("staffer", is_staff=True)


def test_users_get_403(client, stack_dir):
    client.force_login(get_user_model().objects.create_user("alice"))
    assert client.get(reverse("scheduler:index")).status_code == 403


def test_jobs_per_partition_match_sacct(client, staff, slurm_cmd):
    out = slurm_cmd(
        ["sacct", "-a", "-X", "-n", "-P", "-S", f"now-{DAYS}days", "-E", "now", "-o", "JobIDRaw,Partition,Start"]
    ).stdout
    client.force_login(staff)
    response = client.get(reverse("scheduler:index") + f"?delta={DAYS * 86400}")
    assert response.status_code == 200
    window = response.context["window"]
    started = Counter()
    for line in out.splitlines():
        _job_id, partition, start = line.split("|")
        if start in ("", "Unknown", "None"):
            continue
        moment = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()
        if window.start <= moment <= window.end:
            started[partition] += 1
    shown = {entry.partition: entry.jobs for entry in response.context["stats"]}
    assert shown == dict(started)
    csv = client.get(reverse("scheduler:csv") + f"?delta={DAYS * 86400}")
    assert csv.status_code == 200
    assert len(csv.content.decode().splitlines()) == len(shown) + 1
    for name in ("wait", "runtime", "timeouts", "levelfs"):
        assert client.get(reverse("scheduler:graph", args=[name]) + f"?delta={DAYS * 86400}").status_code == 200


def test_levelfs_at_start_comes_from_the_slurm_exporter_series(client, staff):
    """The stack's slurm-exporter series cover its jobs' starts: each partition has a mean LevelFS,
    at the default period too, where one step spans hours and a minute-apart gauge falls between steps."""
    client.force_login(staff)
    for delta in (DAYS * 86400, 30 * 86400, 86400):
        response = client.get(reverse("scheduler:index") + f"?delta={delta}")
        assert response.status_code == 200
        stats = response.context["stats"]
        assert stats
        assert all(entry.levelfs_mean is not None for entry in stats), delta
        assert all(0 < entry.levelfs_mean < 10 for entry in stats)
