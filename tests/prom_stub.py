"""A stub Prometheus client for the accountstats and top tests: it answers by the tags of the portal's unions."""

from __future__ import annotations

import re

from userportal.errors import PrometheusUnavailable
from userportal.prometheus import Sample, Series

TAG_RE = re.compile(r'"portal_series", "([a-z_]+)"')


class StubClient:
    """Answers a union of tagged expressions with ``samples[tag]`` (a list of label dicts and values)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.series: list[Series] = []
        # range answers by tag, like samples: tag -> [(labels, timestamps, values)]
        self.ranges: dict[str, list[tuple[dict[str, str], list[float], list[float]]]] = {}
        self.down = False
        self.queries: list[str] = []
        self.spans: list[float] = []  # seconds between start and end of each range query

    def query(self, expr, *, at=None):
        self.queries.append(expr)
        if self.down:
            raise PrometheusUnavailable("stub: down")
        tags = TAG_RE.findall(expr)
        return [
            Sample(labels={**labels, "portal_series": tag}, value=value)
            for tag in tags
            for labels, value in self.samples.get(tag, [])
        ]

    def query_range(self, expr, *, start, end, step=None):
        self.queries.append(expr)
        self.spans.append((end - start).total_seconds())
        if self.down:
            raise PrometheusUnavailable("stub: down")
        if self.ranges:
            return [
                Series(labels={**labels, "portal_series": tag}, timestamps=list(ts), values=list(vs))
                for tag in TAG_RE.findall(expr)
                for labels, ts, vs in self.ranges.get(tag, [])
            ]
        return list(self.series)
