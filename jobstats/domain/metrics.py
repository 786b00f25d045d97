"""Prometheus for jobstats: one session per request that stops at the first failure.

Pages must not wait on a dead Prometheus once per query (TT's pages hung or turned into 500s):
a :class:`MetricsSession` raises PrometheusUnavailable for every query after the first
failure, and a failure is remembered in the cache for a short while, so the next pages show
their notice at once instead of waiting for the timeout again. Every selector comes from
userportal.promql, which escapes label values.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache

from userportal import promql
from userportal.errors import PrometheusBadResponse, PrometheusUnavailable
from userportal.prometheus import PrometheusClient, Sample, Series, get_client

logger = logging.getLogger(__name__)

DOWN_KEY = "jobstats:prometheus-down"
DOWN_SECONDS = 30
TAG = "portal_series"  # the label tagged() adds, so several expressions share one round trip


def prometheus_marked_down() -> bool:
    return bool(cache.get(DOWN_KEY))


def mark_down() -> None:
    cache.set(DOWN_KEY, True, DOWN_SECONDS)


def clear_down() -> None:
    cache.delete(DOWN_KEY)


class MetricsSession:
    """Queries for one request. After one failure every later query fails at once."""

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
        if prometheus_marked_down():
            self.error = PrometheusUnavailable("Prometheus failed moments ago; not asking again yet")
            raise self.error

    def _failed(self, exc: PrometheusUnavailable) -> None:
        self.error = exc
        if not isinstance(exc, PrometheusBadResponse):  # a bad query is ours; a dead server is everyone's
            mark_down()
        logger.warning("Prometheus query failed: %s", exc)

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        self._guard()
        try:
            return self.client.query(expr, at=datetime.fromtimestamp(at, tz=UTC) if at else None)
        except PrometheusUnavailable as exc:
            self._failed(exc)
            raise

    def query_range(self, expr: str, *, start: float, end: float, step: int) -> list[Series]:
        self._guard()
        try:
            return self.client.query_range(
                expr,
                start=datetime.fromtimestamp(start, tz=UTC),
                end=datetime.fromtimestamp(end, tz=UTC),
                step=step,
            )
        except PrometheusUnavailable as exc:
            self._failed(exc)
            raise


# --- Expression helpers (all label values go through userportal.promql) ----------------------
def job_selector(metric: str, job_ids: Iterable[int], *, label: str = "slurmjobid", **labels: str) -> str:
    """``metric{slurmjobid="7"}`` for one job, ``=~"7|8"`` (escaped alternation) for several."""
    ids = sorted({str(int(job_id)) for job_id in job_ids})
    if len(ids) == 1:
        return promql.selector(metric, {label: ids[0], **labels})
    return promql.selector(metric, labels or None, regex={label: ids})


def node_selector(metric: str, instances: Iterable[str], **labels: str) -> str:
    values = sorted(set(instances))
    if len(values) == 1:
        return promql.selector(metric, {"instance": values[0], **labels})
    return promql.selector(metric, labels or None, regex={"instance": values})


def tagged(expr: str, tag: str) -> str:
    """``expr`` with the label portal_series="<tag>", so a union of several stays apart."""
    return f"label_replace({expr}, {promql.quote(TAG)}, {promql.quote(tag)}, {promql.quote('')}, {promql.quote('')})"


def union(parts: dict[str, str]) -> str:
    """One query for several tagged expressions (``a or b or c``): one round trip instead of many."""
    return " or ".join(tagged(expr, tag) for tag, expr in parts.items())


def by_tag(results: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for item in results:
        grouped.setdefault(item.labels.get(TAG, ""), []).append(item)
    return grouped


def finite(value: float | None) -> float | None:
    """NaN and ±Inf (Prometheus sends both) become None: JSON has no NaN."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return value


def rate_window(step: int) -> str:
    """The rate() window: the site's setting, widened to the step so downsampled points average it."""
    from django.conf import settings

    return promql.duration(max(int(settings.PROMETHEUS_RATE_WINDOW), int(step)))


def node_name(instance: str) -> str:
    """``nc10101.example.org:9100`` to ``nc10101``."""
    return instance.split(":", 1)[0].split(".", 1)[0]
