"""The virtual machines' series: their exporter's health, the instances of a project, project totals.

Every page asks through one MetricsSession and, where it can, in one round trip: the exporter's
health and the page's figures are one union of tagged expressions (userportal.promql). Label and
metric names come from the site's preset (cloudstats.presets); label values from URLs are escaped
by promql.selector.

An instance belongs to a project when its series carry that project's label: the instance page
and its graphs refuse (404) an instance that no series shows in the project of the URL, over the
period the page covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_lazy

from cloudstats.presets import Preset, current
from userportal import promql
from userportal.errors import DataSourceError
from userportal.prometheus import MetricsSession, Sample
from userportal.windows import DAY, HOUR, Window, rate_window, requested

GIB = 1024.0**3

# The periods the pages offer (?delta=); any other period from one minute to a year works too
# (userportal.windows), e.g. a zoomed graph's ?start=&end=.
WINDOWS: tuple[tuple[int, str], ...] = (
    (HOUR, "1 h"),
    (DAY, "1 d"),
    (7 * DAY, "7 d"),
    (30 * DAY, "30 d"),
    (90 * DAY, "90 d"),
)


class ExporterDown(DataSourceError):
    source = "libvirt-exporter"
    user_message = gettext_lazy(
        "The virtual machines' metrics are unavailable right now: their exporter is not answering."
    )


class NoSuchInstance(LookupError):
    """No series shows this instance in this project (a 404)."""


def requested_period(get: Mapping[str, str]) -> Window:
    """The period a request asks for: ``?start=&end=``, ``?delta=`` or CLOUDSTATS_DEFAULT_DAYS (WindowError: a 400)."""
    return requested(
        delta=get.get("delta"),
        start=get.get("start"),
        end=get.get("end"),
        default=settings.CLOUDSTATS_DEFAULT_DAYS * DAY,
    )


@dataclass(frozen=True)
class Health:
    """What the exporters' targets said at their last scrape."""

    targets: int
    up: int
    libvirt_down: int

    @property
    def partial(self) -> bool:
        return 0 < self.up < self.targets or self.libvirt_down > 0


def health_parts(preset: Preset) -> dict[str, str]:
    parts = {"health_up": promql.selector("up", {"job": settings.CLOUDSTATS_EXPORTER_JOB})}
    if preset.libvirt_up_metric:
        parts["health_libvirt"] = promql.selector(preset.libvirt_up_metric)
    return parts


def check_health(samples: dict[str, list[Sample]]) -> Health:
    """Raises ExporterDown when no exporter target answers (or none reaches its libvirtd)."""
    targets = samples.get("health_up", [])
    up = sum(1 for sample in targets if sample.value == 1)
    libvirt_down = sum(1 for sample in samples.get("health_libvirt", []) if sample.value != 1)
    if not targets:
        raise ExporterDown(f"no series up{{job={settings.CLOUDSTATS_EXPORTER_JOB!r}}}: no exporter is scraped")
    if up == 0 or up - libvirt_down <= 0:
        raise ExporterDown(f"{len(targets)} exporter target(s), {up} up, {libvirt_down} without libvirtd")
    return Health(targets=len(targets), up=up, libvirt_down=libvirt_down)


def query(session: MetricsSession, parts: dict[str, str]) -> tuple[Health, dict[str, list[Sample]]]:
    """The exporters' health and ``parts`` in one instant query."""
    preset = current()
    answer = promql.by_tag(session.query(promql.union({**health_parts(preset), **parts})))
    return check_health(answer), answer


# --- selectors and per-instance expressions ----------------------------------------------------
def labels(preset: Preset, project: str | None = None, uuid: str | None = None) -> dict[str, str]:
    wanted: dict[str, str] = {}
    if project is not None:
        wanted[preset.project_label] = project
    if uuid is not None:
        wanted[preset.uuid_label] = uuid
    return wanted


def instance_labels(preset: Preset) -> list[str]:
    """The labels that name an instance: uuid, name, project, then flavor and user when reported."""
    names = [preset.uuid_label, preset.name_label, preset.project_label, preset.flavor_label, preset.user_label]
    return [name for name in names if name]


def by(names: Iterable[str]) -> str:
    return ", ".join(names)


def vcpus_expr(preset: Preset, selector_labels: dict[str, str], group: list[str], *, over: int = 0) -> str:
    """Each instance's vCPUs (one series per instance), at the last sample within ``over`` seconds."""
    sel = promql.selector(preset.vcpus_metric, selector_labels)
    if over:
        sel = f"last_over_time({sel}[{promql.duration(over)}])"
    return f"{'count' if preset.vcpus_counted else 'max'} by ({by(group)}) ({sel})"


def memory_expr(preset: Preset, selector_labels: dict[str, str], group: list[str], *, over: int = 0) -> str:
    """Each instance's allocated memory in the preset's unit (× memory_scale for bytes)."""
    sel = promql.selector(preset.memory_metric, selector_labels)
    if over:
        sel = f"last_over_time({sel}[{promql.duration(over)}])"
    return f"max by ({by(group)}) ({sel})"


def rate_expr(metric: str, selector_labels: dict[str, str], group: list[str], window: str) -> str:
    return f"sum by ({by(group)}) (rate({promql.selector(metric, selector_labels)}[{window}]))"


# --- the instances of a project ------------------------------------------------------------------
@dataclass
class Instance:
    uuid: str
    name: str
    project: str
    flavor: str = ""
    user: str = ""
    vcpus: float = 0.0
    memory_bytes: float = 0.0
    running: bool = False  # reported at the last scrape
    cpu_used: float | None = None  # cores, now

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB

    @property
    def cpu_percent(self) -> float | None:
        if self.cpu_used is None or not self.vcpus:
            return None
        return 100.0 * self.cpu_used / self.vcpus


def _instance_from(preset: Preset, sample_labels: dict[str, str]) -> Instance:
    return Instance(
        uuid=sample_labels.get(preset.uuid_label, ""),
        name=sample_labels.get(preset.name_label, ""),
        project=sample_labels.get(preset.project_label, ""),
        flavor=sample_labels.get(preset.flavor_label, "") if preset.flavor_label else "",
        user=sample_labels.get(preset.user_label, "") if preset.user_label else "",
    )


def instances(
    session: MetricsSession, project: str, period: Window, *, uuid: str | None = None
) -> tuple[Health, list[Instance]]:
    """The instances seen in ``project`` over ``period`` (one of them with ``uuid``), running ones first."""
    preset = current()
    group = instance_labels(preset)
    sel = labels(preset, project, uuid)
    parts = {
        "seen": vcpus_expr(preset, sel, group, over=period.seconds),
        "memory": memory_expr(preset, sel, group, over=period.seconds),
        "now": vcpus_expr(preset, sel, [preset.uuid_label]),
        "cpu": rate_expr(preset.cpu.metric, sel, [preset.uuid_label], rate_window(0)),
    }
    state, answer = query(session, parts)
    found: dict[str, Instance] = {}
    for sample in answer.get("seen", []):
        new = _instance_from(preset, sample.labels)
        new.vcpus = sample.value
        found.setdefault(new.uuid, new)

    def each(tag: str) -> list[tuple[Instance, float]]:
        pairs = [(found.get(s.labels.get(preset.uuid_label, "")), s.value) for s in answer.get(tag, [])]
        return [(item, value) for item, value in pairs if item is not None]

    for item, value in each("memory"):
        item.memory_bytes = max(item.memory_bytes, value * preset.memory_scale)
    for item, value in each("now"):
        item.running, item.vcpus = True, value
    for item, value in each("cpu"):
        item.cpu_used = value * preset.cpu.scale
    rows = sorted(found.values(), key=lambda i: (not i.running, i.name, i.uuid))
    return state, rows


def instance(session: MetricsSession, project: str, uuid: str, period: Window) -> tuple[Health, Instance]:
    """The instance ``uuid`` of ``project``; NoSuchInstance when no series shows it there."""
    state, rows = instances(session, project, period, uuid=uuid)
    if not rows:
        raise NoSuchInstance(uuid)
    return state, rows[0]


def check_graph(session: MetricsSession, scope_project: str | None, uuid: str | None, period: Window) -> Health:
    """Before a graph: the exporters' health (ExporterDown), and for an instance's graph that a series
    shows ``uuid`` in the project of the URL over ``period`` (NoSuchInstance otherwise). One query."""
    preset = current()
    parts = {}
    if uuid is not None and scope_project is not None:
        sel = promql.selector(preset.vcpus_metric, labels(preset, scope_project, uuid))
        parts["instance"] = f"count(last_over_time({sel}[{promql.duration(period.seconds)}]))"
    state, answer = query(session, parts)
    if parts and not answer.get("instance"):
        raise NoSuchInstance(uuid)
    return state


# --- projects and their totals -------------------------------------------------------------------
@dataclass
class ProjectTotals:
    name: str
    instances: int = 0  # seen over the period
    running: int = 0
    vcpus: float = 0.0  # of the running instances
    memory_bytes: float = 0.0
    cpu_used: float = 0.0  # cores, now

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


def project_totals(
    session: MetricsSession, period: Window, projects: Iterable[str] | None = None
) -> tuple[Health, list[ProjectTotals]]:
    """Every project seen over ``period`` (or only ``projects``), with its instances, vCPUs and use now."""
    preset = current()
    wanted = sorted(set(projects)) if projects is not None else None
    if wanted is not None and not wanted:
        return Health(targets=0, up=0, libvirt_down=0), []  # nobody's projects: nothing to ask
    regex = {preset.project_label: wanted} if wanted else None
    p, u = preset.project_label, preset.uuid_label

    def per_instance(metric: str, *, over: int = 0, count: bool = False) -> str:
        sel = promql.selector(metric, regex=regex)
        if over:
            sel = f"last_over_time({sel}[{promql.duration(over)}])"
        return f"{'count' if count else 'max'} by ({p}, {u}) ({sel})"

    vcpus_now = per_instance(preset.vcpus_metric, count=preset.vcpus_counted)
    cpu_sel = promql.selector(preset.cpu.metric, regex=regex)
    parts = {
        "instances": f"count by ({p}) ({per_instance(preset.vcpus_metric, over=period.seconds)})",
        "running": f"count by ({p}) ({vcpus_now})",
        "vcpus": f"sum by ({p}) ({vcpus_now})",
        "memory": f"sum by ({p}) ({per_instance(preset.memory_metric)})",
        "cpu": f"sum by ({p}) (rate({cpu_sel}[{rate_window(0)}]))",
    }
    state, answer = query(session, parts)
    rows: dict[str, ProjectTotals] = {name: ProjectTotals(name) for name in wanted or []}
    for tag, samples in answer.items():
        for sample in samples:
            name = sample.labels.get(p, "")
            if tag not in parts or not name:
                continue
            row = rows.setdefault(name, ProjectTotals(name))
            if tag == "instances":
                row.instances = int(sample.value)
            elif tag == "running":
                row.running = int(sample.value)
            elif tag == "vcpus":
                row.vcpus = sample.value
            elif tag == "memory":
                row.memory_bytes = sample.value * preset.memory_scale
            else:
                row.cpu_used = sample.value * preset.cpu.scale
    return state, sorted(rows.values(), key=lambda r: r.name)
