"""A small PromQL builder that escapes label values, and the tagged unions of the portal's pages.

Label values often come from URLs (usernames, accounts, job ids): pasted into a query they could
break it or widen it to other users' data (`def-foo_x|.*`). Every selector is built here.

A page that needs several expressions asks for them in one round trip: each is tagged with the
label ``portal_series`` (:func:`tagged`), the tagged expressions are joined with ``or``
(:func:`union`) and the answer is split back by tag (:func:`by_tag`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from django.conf import settings

TAG = "portal_series"  # the label tagged() adds, so several expressions share one round trip
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def quote(value: str) -> str:
    """A PromQL double-quoted string literal for `value`."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def regex_alternation(values: Iterable[str]) -> str:
    """A fully escaped RE2 alternation matching exactly one of `values` (for `=~`)."""
    escaped = sorted({re.escape(str(v)) for v in values})
    if not escaped:
        raise ValueError("an alternation needs at least one value")
    return "|".join(escaped)


def selector(
    metric: str, labels: Mapping[str, str] | None = None, *, regex: Mapping[str, Iterable[str]] | None = None
) -> str:
    """`metric{label="value",...}` with the site's extra labels (PROMETHEUS_EXTRA_LABELS) added.

    `labels` are exact matches; `regex` maps a label to the values it may take (joined into an
    escaped alternation, so `values` are matched literally, never as patterns).
    """
    if not METRIC_NAME.fullmatch(metric):
        raise ValueError(f"not a metric name: {metric!r}")
    matchers: list[str] = []
    merged: dict[str, str] = {**getattr(settings, "PROMETHEUS_EXTRA_LABELS", {}), **(labels or {})}
    for name, value in sorted(merged.items()):
        _check_label(name)
        matchers.append(f"{name}={quote(str(value))}")
    for name, values in sorted((regex or {}).items()):
        _check_label(name)
        matchers.append(f"{name}=~{quote(regex_alternation(values))}")
    return metric + "{" + ",".join(matchers) + "}"


def duration(seconds: int | float) -> str:
    """A PromQL duration such as `120s`."""
    seconds = int(seconds)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return f"{seconds}s"


def job_selector(metric: str, job_ids: Iterable[int], *, label: str = "slurmjobid", **labels: str) -> str:
    """``metric{slurmjobid="7"}`` for one job, ``=~"7|8"`` (escaped alternation) for several."""
    ids = sorted({str(int(job_id)) for job_id in job_ids})
    if len(ids) == 1:
        return selector(metric, {label: ids[0], **labels})
    return selector(metric, labels or None, regex={label: ids})


def node_selector(metric: str, instances: Iterable[str], **labels: str) -> str:
    """``metric{instance="nc1:9100"}`` for one instance, an escaped alternation for several."""
    values = sorted(set(instances))
    if len(values) == 1:
        return selector(metric, {"instance": values[0], **labels})
    return selector(metric, labels or None, regex={"instance": values})


def node_name(instance: str) -> str:
    """``nc10101.example.org:9100`` to ``nc10101``."""
    return instance.split(":", 1)[0].split(".", 1)[0]


def tagged(expr: str, tag: str) -> str:
    """``expr`` with the label portal_series="<tag>", so a union of several stays apart."""
    return f"label_replace({expr}, {quote(TAG)}, {quote(tag)}, {quote('')}, {quote('')})"


def union(parts: Mapping[str, str]) -> str:
    """One query for several tagged expressions (``a or b or c``): one round trip instead of many."""
    return " or ".join(tagged(expr, tag) for tag, expr in parts.items())


class Labelled(Protocol):
    @property
    def labels(self) -> dict[str, str]: ...


Result = TypeVar("Result", bound=Labelled)


def by_tag(results: Iterable[Result]) -> dict[str, list[Result]]:
    """The answer to a :func:`union`, split back by tag."""
    grouped: dict[str, list[Result]] = {}
    for item in results:
        grouped.setdefault(item.labels.get(TAG, ""), []).append(item)
    return grouped


def _check_label(name: str) -> None:
    if not LABEL_NAME.fullmatch(name):
        raise ValueError(f"not a label name: {name!r}")
