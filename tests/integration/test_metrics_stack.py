"""The portal's /metrics in the stack: Apache serves it to the token only, the stack's Prometheus
scrapes it (job "portal"), and the worker's task outcomes and beat's last success reach it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests
from stack_waiting import wait_for

from userportal.prometheus import get_client

pytestmark = pytest.mark.django_db(databases=["default"])


@pytest.fixture(scope="module")
def portal(stack_dir) -> str:
    get_client.cache_clear()
    return os.environ["PORTAL_STACK_URL"]


@pytest.fixture(scope="module")
def token(stack_dir) -> str:
    return Path(os.environ["PORTAL_STACK_METRICS_TOKEN_FILE"]).read_text().strip()


def _value(query: str) -> float | None:
    samples = get_client().query(query)
    return samples[0].value if samples else None


def test_metrics_answer_the_token_only(portal, token):
    assert requests.get(f"{portal}/metrics", timeout=10).status_code == 403
    assert requests.get(f"{portal}/metrics", headers={"Authorization": "Bearer x"}, timeout=10).status_code == 403
    answer = requests.get(f"{portal}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200
    assert "portal_http_requests_total" in answer.text
    assert "portal_metrics_shared 1.0" in answer.text  # counted in Redis, shared by Apache's processes


def test_prometheus_scrapes_the_portal_and_sees_requests_counted(portal):
    wait_for(lambda: _value('up{job="portal"}') == 1, 60, 'Prometheus to scrape the portal (up{job="portal"} == 1)')
    query = 'sum(portal_http_requests_total{job="portal",view="health",status="200"})'
    before = _value(query) or 0.0
    marker = uuid.uuid4().hex  # a query string the cached /health/ ignores
    for _ in range(5):
        assert requests.get(f"{portal}/health/?{marker}", timeout=10).status_code == 200
    wait_for(lambda: (_value(query) or 0.0) >= before + 5, 60, "the 5 requests in Prometheus", interval=2)
    assert _value('sum(portal_http_request_duration_seconds_count{job="portal",view="health"})') >= 5
    assert _value('portal_source_up{job="portal",source="portal_db"}') == 1
    assert _value('portal_source_up{job="portal",source="slurmdb"}') == 1
    assert _value('portal_celery_queue_length{job="portal"}') is not None


def test_beat_tasks_last_success_on_health_and_in_prometheus(portal):
    # jobqueue.reconcile runs every 60 s in the stack's beat; the worker records it (userportal.beat)
    def reconciled() -> str | None:
        beat = requests.get(f"{portal}/health/", timeout=10).json().get("beat", {})
        return (beat.get("jobqueue.reconcile") or {}).get("last_success")

    wait_for(reconciled, 150, "jobqueue.reconcile's last success on /health/", interval=3)
    wait_for(
        lambda: _value('portal_beat_last_success_timestamp_seconds{job="portal",task="jobqueue.reconcile"}'),
        60,
        "beat's last success in Prometheus",
        interval=3,
    )
    assert _value('portal_beat_late{job="portal",task="jobqueue.reconcile"}') == 0
    assert _value('sum(portal_celery_tasks_total{job="portal",task="jobqueue.reconcile",outcome="success"})') >= 1
