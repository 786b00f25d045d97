"""The one Prometheus client (timeouts, retries, one error type, built lazily) and its session.

Prometheus's HTTP API (/api/v1/query, /api/v1/query_range) over urllib3. Every failure
(connection refused, timeout, non-200 answer, malformed JSON) becomes PrometheusUnavailable
(a bad answer: its subclass PrometheusBadResponse), which pages turn into a notice and the API
into a JSON 503. The client is built on first use from settings, so tests can
change PROMETHEUS_URL and call get_client.cache_clear().

Pages must not wait on a dead Prometheus once per query: every page asks through a
:class:`MetricsSession`, which raises PrometheusUnavailable for every query after the first
failure, and remembers a dead server for a short while (userportal.sources), so the next pages
of every app show their notice at once instead of waiting for the timeout again.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from requests.utils import get_environ_proxies
from urllib3.util.retry import Retry

from userportal.errors import PrometheusBadResponse, PrometheusUnavailable
from userportal.sources import DownMemory
from userportal.windows import Window, step_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    timestamps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


def finite(value: float | None) -> float | None:
    """NaN and ±Inf (Prometheus sends both) become None: JSON has no NaN."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return value


class PrometheusClient:
    """Prometheus's HTTP API over one urllib3 pool: what requests sent, a fifth of its time per query.

    The proxy (HTTP(S)_PROXY, NO_PROXY) and the CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE)
    are read from the environment once, as requests read them on every call.
    """

    def __init__(self, base_url: str, *, timeout: float = 5.0, bearer_token: str = "") -> None:
        # Retry idempotent GETs once on connection trouble; a dead server still fails within ~2x timeout.
        retry = Retry(total=1, backoff_factor=0.2, status_forcelist=(502, 503, 504), allowed_methods=("GET",))
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        options: dict[str, Any] = {
            "retries": retry,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "headers": {"Accept-Encoding": "gzip, deflate", **self.headers},
            "ca_certs": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where(),
        }
        proxy = get_environ_proxies(self.base_url).get(urlsplit(self.base_url).scheme)
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def query(self, promql: str, *, at: datetime | None = None) -> list[Sample]:
        params = {"query": promql, **({"time": str(at.timestamp())} if at else {})}
        samples = []
        for item in self._results("/api/v1/query", params):
            try:
                samples.append(Sample(labels=dict(item.get("metric", {})), value=float(item["value"][1])))
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise PrometheusBadResponse(f"unexpected instant-vector item: {item!r}") from exc
        return samples

    def query_range(self, promql: str, *, start: datetime, end: datetime, step: int | None = None) -> list[Series]:
        if end <= start:
            raise ValueError("end must be after start")
        step = step or step_for((end - start).total_seconds())
        params = {
            "query": promql,
            "start": str(round(start.timestamp())),
            "end": str(round(end.timestamp())),
            "step": f"{int(step)}s",
        }
        series = []
        for item in self._results("/api/v1/query_range", params):
            try:
                pairs = item["values"]
                series.append(
                    Series(
                        labels=dict(item.get("metric", {})),
                        timestamps=[float(t) for t, _ in pairs],
                        values=[float(v) for _, v in pairs],
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise PrometheusBadResponse(f"unexpected range-vector item: {item!r}") from exc
        return series

    def ready(self) -> bool:
        """True when Prometheus answers its readiness probe."""
        try:
            return self._get("/-/ready", {}).status == 200
        except PrometheusUnavailable:
            return False

    def _get(self, path: str, params: dict[str, str]) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request("GET", self.base_url + path, fields=params)
        except urllib3.exceptions.HTTPError as exc:  # refused, timed out, retries exhausted
            raise PrometheusUnavailable(f"{self.base_url}: {exc}") from exc

    def _results(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        response = self._get(path, params)
        if response.status != 200:  # e.g. a bad query (400)
            raise PrometheusBadResponse(
                f"{self.base_url}: HTTP Status Code {response.status} ({response.data[:500]!r})"
            )
        try:
            result = json.loads(response.data)["data"]["result"]
        except (ValueError, KeyError, TypeError) as exc:  # not JSON, or JSON without the expected envelope
            raise PrometheusBadResponse(f"{self.base_url}: {exc}") from exc
        if not isinstance(result, list):
            raise PrometheusBadResponse(f"{self.base_url}: expected a list of results, got {type(result).__name__}")
        return result


@functools.cache
def get_client() -> PrometheusClient:
    return PrometheusClient(
        settings.PROMETHEUS_URL, timeout=settings.PROMETHEUS_TIMEOUT, bearer_token=settings.PROMETHEUS_BEARER_TOKEN
    )


PROMETHEUS_DOWN = DownMemory("prometheus:down")

# The threads of MetricsSession.query_later (one is enough for a sync worker; a few for threaded ones).
_LATER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="prometheus-query")


class MetricsSession:
    """Queries for one request, at epoch seconds. After one failure every later query fails at once."""

    def __init__(self, client: PrometheusClient | None = None) -> None:
        self._client = client
        self.error: PrometheusUnavailable | None = None

    @property
    def client(self) -> PrometheusClient:
        if self._client is None:
            self._client = get_client()
        return self._client

    def _guard(self) -> None:
        if self.error is not None:
            raise self.error
        if PROMETHEUS_DOWN.recent():
            self.error = PrometheusUnavailable("Prometheus failed moments ago; not asking again yet")
            raise self.error

    def _failed(self, exc: PrometheusUnavailable) -> None:
        self.error = exc
        if not isinstance(exc, PrometheusBadResponse):  # a bad query is ours; a dead server is everyone's
            PROMETHEUS_DOWN.remember()
        logger.warning("Prometheus query failed: %s", exc)

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        self._guard()
        try:
            return self.client.query(expr, at=datetime.fromtimestamp(at, tz=UTC) if at else None)
        except PrometheusUnavailable as exc:
            self._failed(exc)
            raise

    def query_later(self, expr: str, *, at: float | None = None) -> Future[list[Sample]]:
        """``query`` in a thread, while the page reads its database; ``result()`` answers or raises as ``query``."""
        return _LATER.submit(self.query, expr, at=at)

    def query_range(self, expr: str, window: Window) -> list[Series]:
        """``expr`` over ``window``, on a grid whose last point is the window's end (userportal.windows)."""
        self._guard()
        try:
            return self.client.query_range(
                expr,
                start=datetime.fromtimestamp(window.first, tz=UTC),
                end=datetime.fromtimestamp(window.end, tz=UTC),
                step=window.step,
            )
        except PrometheusUnavailable as exc:
            self._failed(exc)
            raise
