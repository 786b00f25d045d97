"""The portal's own /metrics, recorded around a benchmark run: what the portal says it did.

The bench reads /metrics (userportal/metrics.py, Prometheus text) before and after the timed
requests and reports, per view, the requests answered, their mean duration and the database
queries per request from the differences: the figures a site's Prometheus would show for the
same load, beside the client's own timings.
"""

from __future__ import annotations

from collections import defaultdict

import requests
from prometheus_client.parser import text_string_to_metric_families

Snapshot = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base: str, token: str) -> Snapshot:
    """Every sample of ``base``/metrics, keyed by (sample name, sorted labels)."""
    answer = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    answer.raise_for_status()
    text = answer.text
    samples: Snapshot = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def per_view(before: Snapshot, after: Snapshot) -> list[tuple[str, int, float, float]]:
    """(view, requests, mean ms, DB queries per request) over the interval, busiest view first."""
    delta: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (name, labels), value in after.items():
        change = value - before.get((name, labels), 0.0)
        view = dict(labels).get("view")
        if view is None or change <= 0:
            continue
        if name == "portal_http_requests_total":
            delta[view]["requests"] += change
        elif name == "portal_http_request_duration_seconds_sum":
            delta[view]["seconds"] += change
        elif name == "portal_db_queries_total":
            delta[view]["queries"] += change
    rows = [
        (view, int(d["requests"]), 1000 * d["seconds"] / d["requests"], d["queries"] / d["requests"])
        for view, d in delta.items()
        if d["requests"]
    ]
    return sorted(rows, key=lambda row: -row[1])


def table(rows: list[tuple[str, int, float, float]]) -> list[str]:
    lines = [
        "The portal's own /metrics over the timed requests (differences of two scrapes):",
        "",
        "| view | requests | mean ms (server) | DB queries per request |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {view} | {count} | {mean:.1f} | {queries:.1f} |" for view, count, mean, queries in rows]
    return lines
