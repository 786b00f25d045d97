"""The portal's own metrics for Prometheus, at ``/metrics`` (text exposition format).

What is counted (userportal/metrics_store.py says where: Redis, shared by every process):

- ``portal_http_requests_total{view,method,status}`` and ``portal_http_request_duration_seconds{view}``
  (a histogram), by the URL pattern's name (``jobstats:user``), never the raw path;
- ``portal_db_queries_total{view,database}``: the queries each view ran, per database alias;
- ``portal_cache_requests_total{cache,result}``: hits and misses of the Django caches
  (userportal/cache_backends.py);
- ``portal_celery_tasks_total{task,outcome}``: the tasks the workers ran, by final state.

Read at scrape time: ``portal_celery_queue_length{queue}`` (the broker's Redis list),
``portal_source_up{source}`` and ``portal_source_latency_seconds{source}`` (the health checks,
cached 10 s), ``portal_beat_last_run_timestamp_seconds{task}``, ``portal_beat_last_success_timestamp_seconds{task}``
and ``portal_beat_late{task}`` (userportal/beat.py).

Who may read it: Rule.METRICS (a bearer ``PORTAL_METRICS_TOKEN``, an address in
``PORTAL_METRICS_ALLOW``, or staff).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from userportal import metrics_store as store
from userportal.clientip import client_ip

REQUESTS = "http_requests"
DURATION = "http_request_duration_seconds"
DB_QUERIES = "db_queries"
CACHE = "cache_requests"
TASKS = "celery_tasks"
STORED = (REQUESTS, DURATION, DB_QUERIES, CACHE, TASKS)


# --- counting ------------------------------------------------------------------------------------
class MetricsMiddleware:
    """Times each request, counts its queries (count_query, on every connection) and adds both to
    the store once it is answered (within PORTAL_METRICS_FLUSH_SECONDS: metrics_store.flush_soon)."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        queries: dict[str, int] = {}
        outer = getattr(_counting, "queries", None)
        _counting.queries = queries
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            _counting.queries = outer
        if response is None:  # declined by a lean path (userportal.token_posts): the whole cycle counts it
            return None  # type: ignore[return-value]
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match.route or "other") if match is not None else "unmatched"
        store.inc(REQUESTS, (view, request.method or "", str(response.status_code)))
        store.observe(DURATION, (view,), elapsed)
        for alias, count in queries.items():
            store.inc(DB_QUERIES, (view, alias), count)
        store.flush_soon()
        return response


# The counts of the request this thread is answering (MetricsMiddleware), by database alias.
_counting = threading.local()


def count_query(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any) -> Any:
    """An execute wrapper on every connection (count_queries_of): a query counts for the request
    this thread is answering, if any. Installed once per connection instead of around each
    request (connections.all() and a wrapper per connection cost more than the upload's checks)."""
    queries = getattr(_counting, "queries", None)
    if queries is not None:
        alias = context["connection"].alias
        queries[alias] = queries.get(alias, 0) + 1
    return execute(sql, params, many, context)


def count_queries_of(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created: count_query first among the connection's wrappers (once: the list
    outlives reconnections; first, so a ``with execute_wrapper()`` around the connect pops its own)."""
    if count_query not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, count_query)


def count_cache(cache: str, hits: int, misses: int) -> None:
    if hits:
        store.inc(CACHE, (cache, "hit"), hits)
    if misses:
        store.inc(CACHE, (cache, "miss"), misses)


def task_finished(task: str, outcome: str) -> None:
    """A Celery task ended (task_postrun): counted and flushed at once (a worker has no request end)."""
    store.inc(TASKS, (task, outcome.lower()))
    store.flush()


def connect_signals() -> None:
    """Count every request's queries and every Celery task's outcome (UserportalConfig.ready())."""
    from celery.signals import task_postrun
    from django.db.backends.signals import connection_created

    connection_created.connect(count_queries_of, weak=False, dispatch_uid="userportal.metrics.queries")
    for connection in connections.all(initialized_only=True):  # any set up before this (none in a server)
        count_queries_of(None, connection)
    task_postrun.connect(_postrun, weak=False, dispatch_uid="userportal.metrics.postrun")


def _postrun(sender: Any = None, state: str | None = None, **kwargs: Any) -> None:
    task_finished(getattr(sender, "name", ""), state or "unknown")


# --- who may read it -----------------------------------------------------------------------------
def scraper_allowed(request: HttpRequest) -> bool:
    """The bearer token PORTAL_METRICS_TOKEN, or a client address inside PORTAL_METRICS_ALLOW."""
    token = str(getattr(settings, "PORTAL_METRICS_TOKEN", "") or "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        given = hashlib.sha256(header[len("Bearer ") :].strip().encode()).digest()
        if hmac.compare_digest(given, hashlib.sha256(token.encode()).digest()):
            return True
    networks = getattr(settings, "PORTAL_METRICS_ALLOW", [])
    address = client_ip(request)
    if networks and address:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)
    return False


# --- exposition ----------------------------------------------------------------------------------
class PortalCollector:
    """Every family, built at each scrape from the store and the live checks."""

    def collect(self) -> Iterator[Metric]:
        totals = store.read(STORED)
        yield _counter("portal_http_requests", "Requests answered, by view, method and status.",
                       ["view", "method", "status"], totals[REQUESTS])  # fmt: skip
        yield _histogram(totals[DURATION])
        yield _counter("portal_db_queries", "Database queries run by requests, by view and database alias.",
                       ["view", "database"], totals[DB_QUERIES])  # fmt: skip
        yield _counter("portal_cache_requests", "Django cache reads, by cache and result (hit or miss).",
                       ["cache", "result"], totals[CACHE])  # fmt: skip
        yield _counter("portal_celery_tasks", "Celery tasks ended, by task and outcome (success, failure, retry...).",
                       ["task", "outcome"], totals[TASKS])  # fmt: skip
        yield from _live()


def _counter(name: str, doc: str, labels: list[str], values: dict[store.Labels, float]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family


def _histogram(values: dict[store.Labels, float]) -> Metric:
    family = HistogramMetricFamily(
        "portal_http_request_duration_seconds", "Seconds from a request to its answer, by view.", labels=["view"]
    )
    views = sorted({labels[0] for labels in values})
    for view in views:
        cumulative, buckets = 0.0, []
        for bound in [*(str(b) for b in store.BUCKETS), "+Inf"]:
            cumulative += values.get((view, "bucket", bound), 0.0)
            buckets.append((bound, cumulative))
        family.add_metric([view], buckets, values.get((view, "sum", ""), 0.0))
    return family


def _live() -> Iterator[Metric]:
    from userportal import beat
    from userportal.health import check_sources

    up = GaugeMetricFamily("portal_source_up", "Whether each data source answered its health check.", labels=["source"])
    latency = GaugeMetricFamily(
        "portal_source_latency_seconds", "Seconds each data source took to answer its health check.", labels=["source"]
    )
    for status in check_sources():
        up.add_metric([status.name], 1.0 if status.ok else 0.0)
        latency.add_metric([status.name], status.latency_ms / 1000)
    yield up
    yield latency
    queue = GaugeMetricFamily("portal_celery_queue_length", "Tasks waiting in the broker's queue.", labels=["queue"])
    length = queue_length()
    if length is not None:
        queue.add_metric([default_queue()], float(length))
    yield queue
    yield from beat.metric_families()
    yield GaugeMetricFamily(
        "portal_metrics_shared", "1 when the counts are shared by every process (Redis), 0 when per process.",
        value=1.0 if store.shared() else 0.0,
    )  # fmt: skip
    yield CounterMetricFamily(
        "portal_metrics_dropped", "Counts dropped while the metrics Redis failed.", value=store.dropped()
    )


def default_queue() -> str:
    return str(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery") or "celery")


def queue_length() -> int | None:
    """Tasks waiting in the default queue of a Redis broker (kombu: a list per queue and priority step)."""
    import redis

    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    name = default_queue()
    keys = [name, *(f"{name}\x06\x16{step}" for step in (3, 6, 9))]
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
        return int(sum(pipe.execute()))
    except redis.RedisError:
        return None
    finally:
        client.close()


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PortalCollector())
    return bytes(generate_latest(registry))


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)  # what Prometheus 2 reads
