"""The portal's own metrics (/metrics): who may read them, what they count, where the counts live."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

import pytest
from celery import shared_task
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from skipping import skip_or_fail

from userportal import beat, checks, metrics, metrics_store
from userportal.models import BeatRun

pytestmark = pytest.mark.django_db

TOKEN = "scrape-" + "x" * 40


@pytest.fixture(autouse=True)
def _fresh_counts(settings):
    settings.PORTAL_METRICS_TOKEN = TOKEN
    settings.PORTAL_METRICS_ALLOW = []
    settings.PORTAL_METRICS_REDIS_URL = ""
    metrics_store.reset()
    yield
    metrics_store.reset()


def scrape(client: Client | None = None, **headers: str) -> str:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name{labels...}`` of an exposition (labels in any order), or None."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def test_without_the_token_or_an_allowed_address_a_scraper_is_refused(settings):
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    settings.PORTAL_METRICS_ALLOW = ["10.0.0.0/8"]
    assert Client().get("/metrics").status_code == 403  # the test client is 127.0.0.1


def test_the_token_an_allowed_network_or_staff_may_read_it(settings):
    assert "portal_http_requests_total" in scrape()
    settings.PORTAL_METRICS_ALLOW = ["127.0.0.0/8"]
    assert Client().get("/metrics").status_code == 200
    settings.PORTAL_METRICS_ALLOW = []
    staff = Client()
    staff.force_login(User.objects.create_user("staffer", is_staff=True))
    assert staff.get("/metrics").status_code == 200
    user = Client()
    user.force_login(User.objects.create_user("alice"))
    assert user.get("/metrics").status_code == 403


def test_requests_are_counted_by_view_status_and_latency_with_their_queries():
    client = Client()
    for _ in range(3):
        assert client.get("/health/").status_code == 200
    assert client.get("/no/such/page/").status_code == 404
    text = scrape()
    assert value(text, "portal_http_requests_total", view="health", method="GET", status="200") == 3
    assert value(text, "portal_http_requests_total", view="unmatched", status="404") == 1
    assert value(text, "portal_http_request_duration_seconds_count", view="health") == 3
    assert value(text, "portal_http_request_duration_seconds_bucket", view="health", le="+Inf") == 3
    assert value(text, "portal_http_request_duration_seconds_sum", view="health") > 0
    # /health/ asks each database SELECT 1 (its answer is cached 10 s: the first request)
    assert value(text, "portal_db_queries_total", view="health", database="default") >= 1
    assert value(text, "portal_source_up", source="portal_db") == 1
    assert value(text, "portal_source_up", source="prometheus") == 0  # none listens in the unit tests
    assert value(text, "portal_metrics_shared") == 0


def test_cache_hits_and_misses_are_counted():
    cache.get("metrics-test-missing")
    cache.set("metrics-test-here", 1)
    cache.get("metrics-test-here")
    cache.get_many(["metrics-test-here", "metrics-test-missing"])
    text = scrape()
    assert value(text, "portal_cache_requests_total", cache="default", result="hit") >= 2
    assert value(text, "portal_cache_requests_total", cache="default", result="miss") >= 2


@shared_task(name="tests.metrics_probe")
def probe(fail: bool = False) -> str:
    if fail:
        raise RuntimeError("the probe failed on purpose")
    return "ok"


def test_task_outcomes_and_a_beat_tasks_last_run_and_success(settings):
    settings.CELERY_BEAT_SCHEDULE = {"probe": {"task": "tests.metrics_probe", "schedule": 60.0}}
    probe.apply_async()
    probe.apply_async()
    with pytest.raises(RuntimeError):
        probe.apply_async(kwargs={"fail": True}).get()
    row = BeatRun.objects.get(task="tests.metrics_probe")
    assert row.runs == 3 and row.last_success and row.last_failure
    assert row.last_error == "RuntimeError: the probe failed on purpose"
    text = scrape()
    assert value(text, "portal_celery_tasks_total", task="tests.metrics_probe", outcome="success") == 2
    assert value(text, "portal_celery_tasks_total", task="tests.metrics_probe", outcome="failure") == 1
    assert value(text, "portal_beat_last_success_timestamp_seconds", task="tests.metrics_probe") == pytest.approx(
        row.last_success.timestamp()
    )
    assert value(text, "portal_beat_late", task="tests.metrics_probe") == 0

    health = Client().get("/health/").json()["beat"]["tests.metrics_probe"]
    assert health["last_success"] == row.last_success.isoformat() and health["late"] is False
    assert "last_error" not in health  # staff only
    staff = Client()
    staff.force_login(User.objects.create_user("staffer", is_staff=True))
    assert staff.get("/health/").json()["beat"]["tests.metrics_probe"]["last_error"].startswith("RuntimeError")
    page = staff.get("/staff/tasks/")
    assert page.status_code == 200
    assert b"tests.metrics_probe" in page.content and b"the probe failed on purpose" in page.content


def test_a_beat_task_whose_success_is_old_is_late(settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.CELERY_BEAT_SCHEDULE = {"probe": {"task": "tests.metrics_probe", "schedule": 60.0}}
    now = timezone.now()
    BeatRun.objects.create(task="tests.metrics_probe", runs=5, last_run=now, last_success=now - timedelta(minutes=4))
    assert [s.late for s in beat.statuses(now)] == [True]
    BeatRun.objects.filter(task="tests.metrics_probe").update(last_success=now - timedelta(minutes=2))
    assert [s.late for s in beat.statuses(now)] == [False]


def test_deploy_check_warns_about_per_process_state(settings):
    settings.PORTAL_METRICS_REDIS_URL = ""
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": "userportal.cache_backends.LocMemCache"}}
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    ids = {message.id for message in checks.check_shared_state()}
    assert ids == {"portal.W012", "portal.W013", "portal.W014"}
    settings.PORTAL_METRICS_REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": "userportal.cache_backends.RedisCache"}}
    assert checks.check_shared_state() == []


def test_a_dead_metrics_redis_drops_counts_without_failing_requests(settings):
    settings.PORTAL_METRICS_REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens
    assert Client().get("/health/").status_code == 200
    assert Client().get("/health/").status_code == 200  # within DOWN_SECONDS: not even tried
    assert metrics_store.dropped() > 0


def _redis_url() -> str:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        skip_or_fail(f"no Redis at {url}")
    return url


def test_counts_in_redis_are_shared_by_every_process(settings, monkeypatch):
    settings.PORTAL_METRICS_REDIS_URL = _redis_url()
    monkeypatch.setattr(metrics_store, "PREFIX", f"portal:metrics:test-{uuid.uuid4().hex}:")
    try:
        Client().get("/health/")
        # another process: its own buffer and memory, the same Redis
        metrics_store.inc(metrics.REQUESTS, ("health", "GET", "200"), 2)
        metrics_store.flush()
        metrics_store.reset()  # this process forgets everything it counted
        text = scrape()
        assert value(text, "portal_http_requests_total", view="health", method="GET", status="200") == 3
        assert value(text, "portal_metrics_shared") == 1
    finally:
        metrics_store.client().delete(*(metrics_store.PREFIX + name for name in metrics.STORED))


def test_a_requests_counts_reach_redis_from_the_background_flusher_not_in_the_request(settings, monkeypatch):
    settings.PORTAL_METRICS_REDIS_URL = _redis_url()
    settings.PORTAL_METRICS_FLUSH_SECONDS = 0.05
    monkeypatch.setattr(metrics_store, "PREFIX", f"portal:metrics:test-{uuid.uuid4().hex}:")
    flushed_by: list[str] = []
    flush = metrics_store.flush
    monkeypatch.setattr(metrics_store, "flush", lambda: flushed_by.append(threading.current_thread().name) or flush())
    field = metrics_store._field(("health", "GET", "200"))
    try:
        Client().get("/health/")
        Client().get("/health/")
        assert threading.current_thread().name not in flushed_by  # no round trip in the requests
        deadline = time.monotonic() + 10
        while metrics_store.client().hget(metrics_store.PREFIX + metrics.REQUESTS, field) != b"2":
            assert time.monotonic() < deadline, "the background flusher did not add the counts"
            time.sleep(0.02)
        assert "metrics-flush" in flushed_by
    finally:
        metrics_store.client().delete(*(metrics_store.PREFIX + name for name in metrics.STORED))


def test_staff_see_which_instance_and_process_answered_health():
    staff = Client()
    staff.force_login(User.objects.create_user("staffer", is_staff=True))
    instance = staff.get("/health/").json()["instance"]
    assert instance["pid"] == os.getpid() and instance["host"] and instance["process_group"] == ""
    user = Client()
    user.force_login(User.objects.create_user("alice"))
    assert "instance" not in user.get("/health/").json()


def test_the_redis_cache_keeps_one_client_per_pool_and_still_counts():
    from userportal.cache_backends import RedisCache

    # a prefix of its own: the unit passes' xdist workers (and the stack) share this Redis database
    cache = RedisCache(_redis_url(), {"KEY_PREFIX": f"reuse-test-{uuid.uuid4().hex}"})
    client = cache._cache.get_client("a")
    assert cache._cache.get_client("b") is client  # Django's own makes a new redis.Redis per call
    cache.set("k", 41)
    assert cache.get("k") == 41
    assert cache.get("absent", "default") == "default"
    cache.delete("k")
