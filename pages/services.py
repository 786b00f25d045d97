"""The public cluster status (no login): scheduler load, filesystems, login and transfer nodes, software in use.

Every figure aggregates over the whole cluster (slurm-exporter's totals, node_exporter on the nodes
PAGES_LOGIN_NODES lists, the Lustre recording rules per filesystem, the applications' core use
classified into PAGES_SOFTWARE's categories): no series or label that names a user or an account
reaches a public answer. Answers are cached PAGES_CACHE_SECONDS, so anonymous visitors cannot make
Prometheus work harder than one query per graph and period in that time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils.functional import Promise
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from markdown_it import MarkdownIt

from userportal import promql
from userportal.figures import Figure, figure, layout, no_data, trace
from userportal.prometheus import MetricsSession, finite
from userportal.windows import Window, rate_window

SECTIONS = ("scheduler", "filesystems", "logins", "software")
SECTION_TITLES = {
    "scheduler": gettext_lazy("Scheduler load"),
    "filesystems": gettext_lazy("Filesystems"),
    "logins": gettext_lazy("Login and data-transfer nodes"),
    "software": gettext_lazy("Software in use"),
}
DEFAULT_DAYS = 7


# --- the intro ------------------------------------------------------------------------------------
def intro_html(text: str) -> SafeString:
    """PAGES_INTRO's Markdown as HTML: raw HTML in it is escaped, and links keep safe schemes only."""
    # markdown-it's "html": False escapes every tag; its link check refuses javascript:, vbscript:,
    # file: and data: (but images). TT rendered its intro with |safe.
    return mark_safe(MarkdownIt("commonmark", {"html": False, "linkify": False}).render(text))  # noqa: S308


# --- the login and transfer nodes -----------------------------------------------------------------
@dataclass(frozen=True)
class LoginNode:
    name: str  # shown on the page
    instance: str  # node_exporter's instance label


def login_nodes() -> list[LoginNode]:
    """PAGES_LOGIN_NODES: ``name=instance`` (or a bare instance, shown without its port)."""
    nodes = []
    for item in settings.PAGES_LOGIN_NODES:
        name, sep, instance = item.partition("=")
        nodes.append(LoginNode(name.strip(), instance.strip()) if sep else LoginNode(item.split(":")[0], item))
    return nodes


def _instances() -> dict[str, str]:
    return {node.instance: node.name for node in login_nodes()}


def _node_selector(metric: str, **labels: str) -> str:
    return promql.node_selector(metric, _instances(), **labels)


# --- the graphs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GraphSpec:
    name: str
    section: str
    title: str | Promise
    unit: str
    build: Callable[[MetricsSession, Window, GraphSpec], Figure]


def _scheduler(kind: str) -> Callable[[MetricsSession, Window, GraphSpec], Figure]:
    def build(session: MetricsSession, window: Window, spec: GraphSpec) -> Figure:
        parts = {
            "allocated": f"sum({promql.selector(f'slurm_{kind}_alloc')})",
            # Usable: what is not down or drained (allocated + idle); total: everything installed.
            "usable": f"sum({promql.selector(f'slurm_{kind}_alloc')}) + sum({promql.selector(f'slurm_{kind}_idle')})",
            "total": f"sum({promql.selector(f'slurm_{kind}_total')})",
        }
        names = {"allocated": _("allocated"), "usable": _("usable"), "total": _("installed")}
        traces = []
        for key, expr in parts.items():
            for series in session.query_range(expr, window):
                traces.append(trace(series, names[key], unit=spec.unit, dash="dot" if key == "total" else None))
        return figure(traces, layout(str(spec.title), spec.unit), unit=spec.unit)

    return build


def _per_node(
    expr_of: Callable[[str], str], scale: float = 1.0
) -> Callable[[MetricsSession, Window, GraphSpec], Figure]:
    def build(session: MetricsSession, window: Window, spec: GraphSpec) -> Figure:
        if not login_nodes():
            return no_data(str(spec.title), _("No login or transfer node is listed (PAGES_LOGIN_NODES)."))
        names = _instances()
        series = session.query_range(expr_of(rate_window(window.step)), window)
        traces = [
            trace(s, names.get(s.labels.get("instance", ""), "?"), scale=scale, unit=spec.unit)
            for s in sorted(series, key=lambda s: names.get(s.labels.get("instance", ""), ""))
            if s.labels.get("instance", "") in names  # never another node's series
        ]
        return figure(traces, layout(str(spec.title), spec.unit), unit=spec.unit)

    return build


def _cpu(rw: str) -> str:
    idle = _node_selector("node_cpu_seconds_total", mode="idle")
    cores = f"count by (instance) ({idle})"
    return f"100 * (1 - sum by (instance) (rate({idle}[{rw}])) / {cores})"


def _memory(rw: str) -> str:
    total, available = _node_selector("node_memory_MemTotal_bytes"), _node_selector("node_memory_MemAvailable_bytes")
    return f"sum by (instance) ({total} - {available})"


def _load(rw: str) -> str:
    return f"sum by (instance) ({_node_selector('node_load1')})"


def _without_loopback(selector: str) -> str:
    return selector[:-1] + ',device!="lo"}'  # the builder has no negative matcher; this one is a constant


def _network(rw: str) -> str:
    received = _without_loopback(_node_selector("node_network_receive_bytes_total"))
    sent = _without_loopback(_node_selector("node_network_transmit_bytes_total"))
    return f"sum by (instance) (rate({received}[{rw}]) + rate({sent}[{rw}]))"


def _filesystems(rule: str, *, add: str = "") -> Callable[[MetricsSession, Window, GraphSpec], Figure]:
    def build(session: MetricsSession, window: Window, spec: GraphSpec) -> Figure:
        if not settings.PAGES_LUSTRE:
            return no_data(str(spec.title), _("This site does not collect this metric."))
        expr = f"sum by (fs) ({promql.selector(rule)})"
        if add:
            expr = f"{expr} + sum by (fs) ({promql.selector(add)})"
        scale = 1 / 1048576 if "bytes" in rule else 1.0
        traces = [
            trace(s, s.labels.get("fs", "?"), scale=scale, unit=spec.unit) for s in session.query_range(expr, window)
        ]
        return figure(traces, layout(str(spec.title), spec.unit), unit=spec.unit)

    return build


GRAPHS: dict[str, GraphSpec] = {
    spec.name: spec
    for spec in (
        GraphSpec("cores", "scheduler", gettext_lazy("CPU cores"), "cores", _scheduler("cpus")),
        GraphSpec("gpus", "scheduler", gettext_lazy("GPUs"), "GPUs", _scheduler("gpus")),
        GraphSpec("fs_metadata", "filesystems", gettext_lazy("Metadata operations"), "ops/s", _filesystems("lustre:metadata:rate3m")),
        GraphSpec(
            "fs_throughput", "filesystems", gettext_lazy("Read and write throughput"), "MiB/s",
            _filesystems("lustre:read_bytes:rate3m", add="lustre:write_bytes:rate3m"),
        ),
        GraphSpec("login_cpu", "logins", gettext_lazy("CPU use"), "%", _per_node(_cpu)),
        GraphSpec("login_memory", "logins", gettext_lazy("Memory used"), "GiB", _per_node(_memory, 1 / 1024**3)),
        GraphSpec("login_load", "logins", gettext_lazy("Load (1 minute)"), "", _per_node(_load)),
        GraphSpec("login_network", "logins", gettext_lazy("Network (in + out)"), "MiB/s", _per_node(_network, 1 / 1048576)),
    )
}  # fmt: skip


def graphs_of(section: str) -> list[GraphSpec]:
    return [spec for spec in GRAPHS.values() if spec.section == section]


def _cached(key: str, compute: Callable[[], Any]) -> Any:
    seconds = settings.PAGES_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    key = "pages:" + hashlib.sha256(key.encode()).hexdigest()
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, seconds)
    return found


def build_graph(session: MetricsSession, name: str, window: Window) -> Figure:
    """One public graph (cached). Raises PrometheusUnavailable when Prometheus does not answer."""
    spec = GRAPHS[name]
    return _cached(f"graph|{name}|{window.start:.0f}|{window.end:.0f}", lambda: spec.build(session, window, spec))


# --- software in use ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Share:
    name: str
    cores: float
    percent: float


def classify(binary: str, patterns: list[tuple[str, re.Pattern[str]]]) -> str:
    """The first category whose pattern matches the executable's name; every other one is "Other"."""
    for name, pattern in patterns:
        if pattern.search(binary):
            return name
    return str(_("Other"))


def software_shares(session: MetricsSession, window: Window) -> list[Share]:
    """Mean cores per software category over the window, largest first (cached)."""

    def compute() -> list[Share]:
        expr = (
            f"sum by (bin) (avg_over_time({promql.selector('slurm_job:process_usage:sum_account')}[{window.seconds}s]))"
        )
        totals: dict[str, float] = {}
        patterns = [(name, re.compile(pattern)) for name, pattern in settings.PAGES_SOFTWARE.items()]
        for sample in session.query(expr, at=window.end):
            value = finite(sample.value)
            if value:
                category = classify(sample.labels.get("bin", ""), patterns)
                totals[category] = totals.get(category, 0.0) + value
        whole = sum(totals.values())
        shares = [Share(name, round(cores, 2), 100 * cores / whole) for name, cores in totals.items() if whole]
        return sorted(shares, key=lambda s: -s.cores)

    return _cached(f"software|{window.start:.0f}|{window.end:.0f}", compute)
