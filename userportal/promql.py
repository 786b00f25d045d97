"""A small PromQL builder that escapes label values.

Label values often come from URLs (usernames, accounts, job ids): pasted into a query they could
break it or widen it to other users' data (`def-foo_x|.*`). Every selector is built here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from django.conf import settings

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


def _check_label(name: str) -> None:
    if not LABEL_NAME.fullmatch(name):
        raise ValueError(f"not a label name: {name!r}")
