"""The policy: each limit refused with its reason on its field, and what the cluster has."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from priorities_helpers import request_data

from priorities.models import Status
from priorities.policy import cluster_gpus, validate_request
from slurm.router import allow_writes

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def check(personas, **overrides):
    return validate_request(request_data(**overrides), username="owner", cluster=personas.slurm.cluster)


def test_a_request_within_the_policy_passes(personas):
    assert check(personas) == {}


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"duration_days": 15}, "duration_days", "at most 14 days"),
        ({"duration_days": 0}, "duration_days", "at least one day"),
        ({"gpu_count": 5}, "gpu_count", "At most 4 a100 GPUs per request"),
        ({"gpu_count": 0}, "gpu_count", "at least one GPU"),
        ({"gpu_type": "h100"}, "gpu_type", "no GPU type h100"),
        ({"account": "def-other"}, "account", "no association with the Slurm account def-other"),
        ({"start": timezone.now() - timedelta(days=1)}, "start", "in the past"),
        ({"ticket": "see my mail"}, "ticket", "Bugzilla ticket number"),
        ({"justification": "  "}, "justification", "Explain"),
        ({"users": ["outsider"]}, "users", "no association with def-owner: outsider"),
        ({"users": ["bad;name"]}, "users", "Not valid user names"),
    ],
)
def test_each_policy_violation_is_explained_on_its_field(personas, overrides, field, text):
    errors = check(personas, **overrides)
    assert field in errors, errors
    assert any(text in message for message in errors[field]), errors[field]


def test_ticket_links_and_numbers_are_accepted(personas):
    assert "ticket" not in check(personas, ticket="https://bugzilla.example.org/show_bug.cgi?id=12")
    assert "ticket" not in check(personas, ticket="#12")


def test_limits_are_configurable_per_gpu_type(personas, settings):
    settings.PRIORITIES_MAX_GPUS_PER_REQUEST = ["a100=1", "*=8"]
    settings.PRIORITIES_MAX_DAYS = 3
    errors = check(personas, gpu_count=2, duration_days=4)
    assert "At most 1 a100" in errors["gpu_count"][0]
    assert "at most 3 days" in errors["duration_days"][0]
    assert "gpu_count" not in check(personas, gpu_type="v100", gpu_count=8, duration_days=3)


def test_account_gpu_limit_counts_overlapping_open_requests_only(personas, make_priority, settings):
    settings.PRIORITIES_MAX_GPUS_PER_ACCOUNT = ["a100=4"]
    start = timezone.now() + timedelta(days=1)
    make_priority(gpu_count=3, start=start, days=3, status=Status.ACCEPTED)
    make_priority(gpu_count=4, start=start + timedelta(days=10), days=2)  # later: does not overlap
    make_priority(gpu_count=4, start=start, days=3, status=Status.REFUSED)  # refused: holds nothing
    errors = check(personas, gpu_count=2, start=start + timedelta(days=1), duration_days=1)
    assert "hold at most 4 a100 GPUs at once" in errors["gpu_count"][0]
    assert "gpu_count" not in check(personas, gpu_count=1, start=start, duration_days=1)


def test_open_requests_per_account_are_limited(personas, make_priority, settings):
    settings.PRIORITIES_MAX_ACTIVE_PER_ACCOUNT = 2
    make_priority(gpu_type="v100")
    make_priority(gpu_type="v100", status=Status.ACTIVE)
    make_priority(gpu_type="v100", status=Status.EXPIRED)
    assert "already has 2 open requests" in check(personas)["account"][0]


def test_cluster_gpus_come_from_the_event_table(personas):
    event = personas.slurm.models.event
    with allow_writes():
        event.objects.create(time_start=100, time_end=0, node_name="", tres="1=16,1001=4,1002=2,1003=2", reason="r")
    assert cluster_gpus(personas.slurm.cluster) == {"a100": 2, "v100": 2}
