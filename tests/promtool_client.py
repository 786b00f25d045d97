"""A Prometheus client for unit tests that evaluates real PromQL: Debian's ``promtool test rules``.

The stub clients answer by tag and never evaluate anything, so they cannot catch a query whose
arithmetic is wrong (a rate window that dilutes a short job, a missing fallback). This client
writes the given input series and the expression into a promtool unit-test file, lets promtool
evaluate it (the same engine as the Prometheus server, staleness and lookback included) and reads
the samples back from its report. Times are epoch seconds counted from 0 (promtool's origin).

``promtool`` comes with Debian's ``prometheus`` package (scripts/bootstrap and scripts/stack
install it); without it the fixture skips, or fails when CI=true, as the browser fixture does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import yaml

from userportal.prometheus import Sample, Series

PROMTOOL = os.environ.get("PORTAL_PROMTOOL", "/usr/bin/promtool")
STALE = "stale"


@dataclass
class InputSeries:
    """One series: labels (``__name__`` included) and (epoch second, value or STALE) points."""

    labels: dict[str, str]
    points: list[tuple[int, float | str]] = field(default_factory=list)

    def selector(self) -> str:
        name = self.labels.get("__name__", "")
        rest = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.labels.items()) if k != "__name__")
        return f"{name}{{{rest}}}"

    def values(self) -> str:
        """promtool's value notation on a 1-second grid from 0: ``_xN`` for gaps."""
        out: list[str] = []
        t = 0
        for at, value in sorted(self.points, key=lambda p: p[0]):
            if at < t:
                continue
            if at > t:
                out.append(f"_x{at - t}")
            out.append(value if isinstance(value, str) else repr(float(value)))
            t = at + 1
        return " ".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


SAMPLE = re.compile(r"(\{(?:[^\"}]|\"(?:[^\"\\]|\\.)*\")*\})\s+(\S+?)(?:,\s*|$)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_got(text: str) -> list[Sample]:
    samples = []
    for labels, value in SAMPLE.findall(text):
        found = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in LABEL.findall(labels)}
        found.pop("__name__", None)
        samples.append(Sample(labels=found, value=float(value)))
    return samples


class PromtoolClient:
    """``query``/``query_range`` as userportal.prometheus.PrometheusClient has them, evaluated by promtool."""

    def __init__(self, series: Iterable[InputSeries] = (), *, now: int | None = None) -> None:
        self.series = list(series)
        self.now = now  # the time of a query asked "now" (at=None)
        self.queries: list[str] = []

    def add(self, series: Iterable[InputSeries]) -> None:
        self.series.extend(series)

    def query(self, expr: str, *, at: datetime | None = None) -> list[Sample]:
        if at is None and self.now is None:
            raise ValueError("PromtoolClient needs an evaluation time (at=, or now= when it is built)")
        self.queries.append(expr)
        return self._evaluate(expr, [int(at.timestamp()) if at is not None else int(self.now or 0)])[0]

    def query_range(self, expr: str, *, start: datetime, end: datetime, step: int | None = None) -> list[Series]:
        self.queries.append(expr)
        first, last, every = int(start.timestamp()), int(end.timestamp()), int(step or 60)
        times = list(range(first, last + 1, every))
        found: dict[tuple[tuple[str, str], ...], Series] = {}
        for t, samples in zip(times, self._evaluate(expr, times), strict=True):
            for sample in samples:
                key = tuple(sorted(sample.labels.items()))
                series = found.setdefault(key, Series(labels=sample.labels, timestamps=[], values=[]))
                series.timestamps.append(float(t))
                series.values.append(sample.value)
        return list(found.values())

    def _evaluate(self, expr: str, times: Sequence[int]) -> list[list[Sample]]:
        test = {
            "evaluation_interval": "1s",
            "tests": [
                {
                    "interval": "1s",
                    "input_series": [{"series": s.selector(), "values": s.values()} for s in self.series],
                    "promql_expr_test": [{"expr": expr, "eval_time": f"{t}s", "exp_samples": []} for t in times],
                }
            ],
        }
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
            yaml.safe_dump(test, handle, width=1 << 20)
            path = handle.name
        try:
            run = subprocess.run([PROMTOOL, "test", "rules", path], capture_output=True, text=True, timeout=120)
        finally:
            os.unlink(path)
        report = run.stdout + run.stderr
        if run.returncode != 0 and "FAILED:" not in report:
            raise AssertionError(f"promtool could not evaluate {expr!r}:\n{report}")
        if "parse error" in report or "could not" in report.lower():
            raise AssertionError(f"promtool: {report}")
        results: dict[int, list[Sample]] = {t: [] for t in times}
        # Each failing test (one that returned samples) reports its time and its samples.
        for block in re.finditer(r"time: ([^,]+),\s*\n\s*exp: [^\n]*\n\s*got: ([^\n]*)", report):
            results[_seconds(block.group(1))] = parse_got(block.group(2))
        return [results[t] for t in times]


def _seconds(text: str) -> int:
    """promtool's duration text (``1h2m3s``, ``10m``, ``0s``) in seconds."""
    total = 0
    for number, unit in re.findall(r"(\d+)(ms|[ywdhms])", text.strip()):
        total += int(number) * {"ms": 0, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[unit]
    return total


def have_promtool() -> bool:
    return bool(shutil.which(PROMTOOL) or os.path.exists(PROMTOOL))


def by_labels(samples: Iterable[Sample], **labels: str) -> Mapping[str, float]:
    """``{tag: value}`` of the samples matching ``labels``, keyed by their portal_series tag."""
    return {
        s.labels.get("portal_series", ""): s.value
        for s in samples
        if all(s.labels.get(k) == v for k, v in labels.items())
    }
