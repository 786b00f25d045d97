"""Use over a period: vCPU-hours allocated and used, memory, disk and network, per instance or project.

Allocations are sampled: Σ over the period of each instance's vCPUs (and memory), one sample every
``step`` seconds (a subquery), × step = vCPU-seconds, so an instance that lived one day of the
seven counts one day. Use is the increase of the counters (CPU time, bytes) over the period.
Idle instances (staff) are those whose typical CPU use, the median over the period of their CPU
rate (sampled every step), is under CLOUDSTATS_IDLE_CPU_PERCENT of their vCPUs: a boot or a nightly
job does not hide an instance that idles the rest of the time. How long each was seen is shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings

from cloudstats.presets import Preset, current
from cloudstats.services import Health, by, instance_labels, query
from userportal import promql
from userportal.csvsafe import writer
from userportal.prometheus import MetricsSession
from userportal.windows import Window, rate_window

HOUR = 3600.0
GIB = 1024.0**3


@dataclass
class Usage:
    """One instance's (or one project's) use over the period; ``values`` in seconds and bytes."""

    project: str
    uuid: str = ""
    name: str = ""
    flavor: str = ""
    user: str = ""
    values: dict[str, float] = field(default_factory=dict)

    def get(self, key: str) -> float:
        return self.values.get(key, 0.0)

    @property
    def vcpu_hours(self) -> float:
        return self.get("vcpu_seconds") / HOUR

    @property
    def cpu_hours(self) -> float:
        return self.get("cpu_seconds") / HOUR

    @property
    def memory_gib_hours(self) -> float:
        return self.get("memory_byte_seconds") / GIB / HOUR

    @property
    def cpu_percent(self) -> float | None:
        vcpu = self.get("vcpu_seconds")
        return 100.0 * self.get("cpu_seconds") / vcpu if vcpu else None

    @property
    def typical_cpu_percent(self) -> float | None:
        """The median of the instance's CPU rate over the period, in % of its vCPUs."""
        if "cpu_median" not in self.values or not self.vcpus:
            return None
        return 100.0 * self.get("cpu_median") / self.vcpus

    @property
    def vcpus(self) -> float:
        return self.get("vcpus")

    @property
    def seen_hours(self) -> float:
        """How long the instance was seen: vCPU-seconds / its vCPUs."""
        return self.get("vcpu_seconds") / self.vcpus / HOUR if self.vcpus else 0.0

    @property
    def disk_read_gib(self) -> float:
        return self.get("disk_read_bytes") / GIB

    @property
    def disk_write_gib(self) -> float:
        return self.get("disk_write_bytes") / GIB

    @property
    def net_rx_gib(self) -> float:
        return self.get("net_rx_bytes") / GIB

    @property
    def net_tx_gib(self) -> float:
        return self.get("net_tx_bytes") / GIB

    @property
    def net_gib(self) -> float:
        return self.net_rx_gib + self.net_tx_gib


COLUMNS = ("disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes")


def per_instance(preset: Preset, metric: str, regex: dict[str, list[str]] | None, *, count: bool = False) -> str:
    """One series per instance: its value (max over duplicates), or its number of series (per-vCPU metrics)."""
    return f"{'count' if count else 'max'} by ({by(instance_labels(preset))}) ({promql.selector(metric, regex=regex)})"


def _parts(preset: Preset, period: Window, group: list[str], regex: dict[str, list[str]] | None) -> dict[str, str]:
    span, step = promql.duration(period.seconds), promql.duration(period.step)
    vcpus = per_instance(preset, preset.vcpus_metric, regex, count=preset.vcpus_counted)

    def increase(metric: str) -> str:
        return f"sum by ({by(group)}) (increase({promql.selector(metric, regex=regex)}[{span}]))"

    return {
        "vcpu_seconds": f"sum by ({by(group)}) (sum_over_time(({vcpus})[{span}:{step}]))",
        "memory_byte_seconds": f"sum by ({by(group)}) "
        f"(sum_over_time(({per_instance(preset, preset.memory_metric, regex)})[{span}:{step}]))",
        "vcpus": f"sum by ({by(group)}) (last_over_time(({vcpus})[{span}:{step}]))",
        "cpu_seconds": increase(preset.cpu.metric),
        "cpu_median": f"sum by ({by(group)}) (quantile_over_time(0.5, (sum by ({by(instance_labels(preset))}) "
        f"(rate({promql.selector(preset.cpu.metric, regex=regex)}[{rate_window(0)}])))[{span}:{step}]))",
        "disk_read_bytes": increase(preset.disk_read_bytes.metric),
        "disk_write_bytes": increase(preset.disk_write_bytes.metric),
        "net_rx_bytes": increase(preset.net_rx_bytes.metric),
        "net_tx_bytes": increase(preset.net_tx_bytes.metric),
    }


def _scales(preset: Preset, period: Window) -> dict[str, float]:
    return {
        "vcpu_seconds": float(period.step),
        "memory_byte_seconds": period.step * preset.memory_scale,
        "cpu_seconds": preset.cpu.scale,
        "cpu_median": preset.cpu.scale,
        "disk_read_bytes": preset.disk_read_bytes.scale,
        "disk_write_bytes": preset.disk_write_bytes.scale,
        "net_rx_bytes": preset.net_rx_bytes.scale,
        "net_tx_bytes": preset.net_tx_bytes.scale,
    }


def usage(
    session: MetricsSession, period: Window, *, projects: Iterable[str] | None = None, per_instance: bool
) -> tuple[Health, list[Usage]]:
    """Use per instance (``per_instance``) or per project, of ``projects`` (every project when None)."""
    preset = current()
    group = instance_labels(preset) if per_instance else [preset.project_label]
    wanted = sorted(set(projects)) if projects is not None else None
    regex = {preset.project_label: wanted} if wanted else None
    parts = _parts(preset, period, group, regex)
    state, answer = query(session, parts)
    scales = _scales(preset, period)
    rows: dict[tuple[str, ...], Usage] = {}
    for tag in parts:
        for sample in answer.get(tag, []):
            key = tuple(sample.labels.get(label, "") for label in group)
            row = rows.get(key)
            if row is None:
                row = rows[key] = Usage(
                    project=sample.labels.get(preset.project_label, ""),
                    uuid=sample.labels.get(preset.uuid_label, ""),
                    name=sample.labels.get(preset.name_label, ""),
                    flavor=sample.labels.get(preset.flavor_label or "", ""),
                    user=sample.labels.get(preset.user_label or "", ""),
                )
            row.values[tag] = row.values.get(tag, 0.0) + sample.value * scales.get(tag, 1.0)
    result = [row for row in rows.values() if row.get("vcpu_seconds") > 0 or row.get("cpu_seconds") > 0]
    result.sort(key=lambda r: (-r.vcpu_hours, r.project, r.name, r.uuid))
    return state, result


def idle(session: MetricsSession, period: Window) -> tuple[Health, list[Usage]]:
    """Instances whose typical CPU use is under CLOUDSTATS_IDLE_CPU_PERCENT of their vCPUs, most vCPUs first."""
    state, rows = usage(session, period, per_instance=True)
    threshold = settings.CLOUDSTATS_IDLE_CPU_PERCENT
    found = [row for row in rows if row.typical_cpu_percent is not None and row.typical_cpu_percent < threshold]
    found.sort(key=lambda r: (-r.vcpus, -r.seen_hours, r.project, r.name))
    return state, found


def write_csv(stream: object, rows: list[Usage], *, per_instance: bool) -> None:
    """The rows as CSV (formula-safe): hours, GiB-hours and GiB, as on the page."""
    out = writer(stream)
    head = ["project"] + (["instance", "uuid", "flavor", "user"] if per_instance else [])
    out.writerow(
        [*head, "vcpu_hours_allocated", "vcpu_hours_used", "cpu_percent", "memory_gib_hours"]
        + [f"{column[:-6]}_gib" for column in COLUMNS]
    )
    for row in rows:
        ident = [row.project] + ([row.name, row.uuid, row.flavor, row.user] if per_instance else [])
        percent = row.cpu_percent
        out.writerow(
            [
                *ident,
                round(row.vcpu_hours, 3),
                round(row.cpu_hours, 3),
                "" if percent is None else round(percent, 2),
                round(row.memory_gib_hours, 3),
            ]
            + [round(row.get(column) / GIB, 4) for column in COLUMNS]
        )
