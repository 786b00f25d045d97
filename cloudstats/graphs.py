"""The cloud graphs (userportal.figures' Plotly contract): every project (staff), one project, one instance.

As TrailblazingTurtle draws them: CPU (cores used, stacked per instance, with the vCPUs allocated),
memory, disk bandwidth and IOPS, network bandwidth; the instance page splits CPU per vCPU and disk
and network per device. A graph the site's exporter cannot draw (cloudstats.presets) answers the
"no data" figure with the reason, without asking Prometheus. One range query per graph.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cloudstats.presets import Counter, Preset, current
from cloudstats.services import by, instance_labels, labels, memory_expr, rate_expr, vcpus_expr
from userportal import figures, promql
from userportal.prometheus import MetricsSession, Series
from userportal.windows import Window, rate_window

STAFF, PROJECT, INSTANCE = "staff", "project", "instance"


@dataclass(frozen=True)
class Scope:
    """Every project (staff), one project, or one instance of a project."""

    project: str | None = None
    uuid: str | None = None

    @property
    def level(self) -> str:
        return INSTANCE if self.uuid else PROJECT if self.project else STAFF


@dataclass(frozen=True)
class GraphSpec:
    name: str
    title: str | Promise
    levels: frozenset[str]
    available: Callable[[Preset], bool] = lambda preset: True


GRAPHS = {
    spec.name: spec
    for spec in (
        GraphSpec("cpu", gettext_lazy("CPU cores"), frozenset({STAFF, PROJECT, INSTANCE})),
        GraphSpec("vcpu", gettext_lazy("CPU per vCPU"), frozenset({INSTANCE}), lambda preset: preset.vcpu is not None),
        GraphSpec("memory", gettext_lazy("Memory allocated"), frozenset({STAFF, PROJECT, INSTANCE})),
        GraphSpec(
            "memory_used",
            gettext_lazy("Memory in use inside the instances"),
            frozenset({STAFF, PROJECT, INSTANCE}),
            lambda preset: preset.memory_unused_metric is not None,
        ),
        GraphSpec("disk_bandwidth", gettext_lazy("Disk bandwidth"), frozenset({PROJECT, INSTANCE})),
        GraphSpec("disk_iops", gettext_lazy("Disk IOPS"), frozenset({PROJECT, INSTANCE})),
        GraphSpec("network_bandwidth", gettext_lazy("Network bandwidth"), frozenset({PROJECT, INSTANCE})),
    )
}


def graphs_for(level: str) -> list[GraphSpec]:
    return [spec for spec in GRAPHS.values() if level in spec.levels]


def _group(preset: Preset, scope: Scope) -> list[str]:
    """How a graph splits its lines: by project (staff), by instance (project), not at all (instance)."""
    if scope.level == STAFF:
        return [preset.project_label]
    if scope.level == PROJECT:
        return [preset.uuid_label, preset.name_label]
    return []


def _sum(expr: str, group: list[str]) -> str:
    return f"sum by ({by(group)}) ({expr})" if group else f"sum({expr})"


def _split(preset: Preset, name: str, scope: Scope) -> list[str]:
    """The labels that tell a graph's lines apart: project or instance, or the device on an instance's page."""
    group = _group(preset, scope)
    if group or name not in IO_COUNTERS:
        return group
    return [preset.net_label if name == "network_bandwidth" else preset.disk_label]


def _io_counters(preset: Preset, name: str) -> dict[str, Counter]:
    return {
        "disk_bandwidth": {"read": preset.disk_read_bytes, "write": preset.disk_write_bytes},
        "disk_iops": {"read": preset.disk_read_requests, "write": preset.disk_write_requests},
        "network_bandwidth": {"rx": preset.net_rx_bytes, "tx": preset.net_tx_bytes},
    }[name]


IO_COUNTERS = ("disk_bandwidth", "disk_iops", "network_bandwidth")


def _parts(preset: Preset, name: str, scope: Scope, window: str) -> dict[str, str]:
    """The tagged expressions of graph ``name``: ``used``/``allocated``, or ``read``/``write``, ``rx``/``tx``."""
    sel = labels(preset, scope.project, scope.uuid)
    split = _split(preset, name, scope)
    instance = instance_labels(preset)
    if name == "cpu":
        return {
            "used": rate_expr(preset.cpu.metric, sel, split, window),
            "allocated": f"sum({vcpus_expr(preset, sel, instance)})",
        }
    if name == "vcpu" and preset.vcpu is not None and preset.vcpu_label:
        return {"used": rate_expr(preset.vcpu.metric, sel, [preset.vcpu_label], window)}
    if name == "memory":
        return {"allocated": _sum(memory_expr(preset, sel, instance), split)}
    if name == "memory_used" and preset.memory_unused_metric:
        unused = f"max by ({by(instance)}) ({promql.selector(preset.memory_unused_metric, sel)})"
        return {
            "used": _sum(f"{memory_expr(preset, sel, instance)} - {unused}", split),
            "allocated": f"sum({memory_expr(preset, sel, instance)})",
        }
    return {key: rate_expr(counter.metric, sel, split, window) for key, counter in _io_counters(preset, name).items()}


UNITS = {
    "cpu": (gettext_lazy("cores"), "cores"),
    "vcpu": (gettext_lazy("cores"), "cores"),
    "memory": (gettext_lazy("bytes"), "B"),
    "memory_used": (gettext_lazy("bytes"), "B"),
    "disk_bandwidth": (gettext_lazy("bytes per second"), "B/s"),
    "disk_iops": (gettext_lazy("operations per second"), "IO/s"),
    "network_bandwidth": (gettext_lazy("bytes per second"), "B/s"),
}


def build(session: MetricsSession, name: str, scope: Scope, period: Window) -> figures.Figure:
    """The figure of graph ``name`` for ``scope`` over ``period`` (the caller checked access and membership)."""
    preset = current()
    spec = GRAPHS[name]
    if not spec.available(preset):
        return figures.no_data(
            str(spec.title),
            _("This site's exporter (%(exporter)s) does not report this.") % {"exporter": preset.title},
        )
    parts = _parts(preset, name, scope, rate_window(period.step))
    answer = promql.by_tag(session.query_range(promql.union(parts), period))
    y_title, unit = UNITS[name]
    traces = _traces(preset, name, scope, answer, unit)
    return figures.figure(traces, figures.layout(str(spec.title), str(y_title)), unit=unit)


def _scale(preset: Preset, name: str, key: str) -> float:
    if name == "cpu" and key == "used":
        return preset.cpu.scale
    if name == "vcpu" and preset.vcpu is not None:
        return preset.vcpu.scale
    if name.startswith("memory"):
        return preset.memory_scale
    return 1.0


def _traces(
    preset: Preset, name: str, scope: Scope, answer: dict[str, list[Series]], unit: str
) -> list[dict[str, object]]:
    """Stacked use per project, instance or vCPU; the allocation as a dashed total; I/O per direction."""
    words = {
        "used": _("used"),
        "allocated": _("allocated"),
        "read": _("read"),
        "write": _("write"),
        "rx": _("received"),
        "tx": _("sent"),
    }
    split = _split(preset, name, scope)
    stacked = name in ("cpu", "vcpu", "memory", "memory_used") and (scope.level != INSTANCE or name == "vcpu")
    traces: list[dict[str, object]] = []
    for key in [key for key in words if key in answer]:
        series, scale = answer[key], _scale(preset, name, key)
        if key == "allocated" and name in ("cpu", "memory_used"):
            traces += [figures.trace(item, words[key], scale=scale, unit=unit, dash="dash") for item in series]
            continue
        legend = _legends(preset, name, series, split)
        for item in sorted(series, key=lambda s: legend[id(s)]):
            who = legend[id(item)]
            title = (who or words[key]) if key in ("used", "allocated") else f"{words[key]} {who}".strip()
            traces.append(figures.trace(item, title, scale=scale, unit=unit, stack=stacked))
    return traces


def _legends(preset: Preset, name: str, series: list[Series], split: list[str]) -> dict[int, str]:
    """A legend per series: project, instance name (with its uuid when names repeat), vCPU or device."""
    if name == "vcpu":
        return {id(s): _("vCPU %(n)s") % {"n": s.labels.get(preset.vcpu_label or "", "")} for s in series}
    if split[:1] == [preset.uuid_label]:
        names = Tally(s.labels.get(preset.name_label, "") for s in series)
        return {
            id(s): (
                f"{s.labels.get(preset.name_label, '')} ({s.labels.get(preset.uuid_label, '')[:8]})"
                if names[s.labels.get(preset.name_label, "")] > 1 or not s.labels.get(preset.name_label)
                else s.labels.get(preset.name_label, "")
            )
            for s in series
        }
    return {id(s): " ".join(s.labels.get(label, "") for label in split) for s in series}
