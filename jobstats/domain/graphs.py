"""The graphs of the user and job pages: one PromQL union per graph, one Plotly figure out.

Names, units and computations follow TT (domain 4.5) with its bugs fixed: GPU values are per
GPU, x values are UTC, empty results give the "no data" figure, and every label value goes
through userportal.promql. A graph whose exporter the site does not run (JOBSTATS_METRICS) is
not offered and answers "no data" without asking Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from jobstats.domain.gpu_models import gpu_model
from userportal import promql
from userportal.figures import Figure, constant_trace, figure, layout, no_data, trace
from userportal.prometheus import MetricsSession, Series, finite
from userportal.promql import by_tag, job_selector, node_name, node_selector, union
from userportal.windows import Window, rate_window

GIB = 1024**3
MIB = 1024**2
MAX_NODES = 64  # node-level graphs of bigger jobs would be unreadable (and slow)


@dataclass(frozen=True)
class JobScope:
    """What a job graph is about: one job, or several (a job-id list)."""

    job_ids: tuple[int, ...]
    nodes: tuple[str, ...]
    cpus: int
    gpus: int
    gpu_type: str | None = None  # Slurm's GRES type (a100), a fallback for the model
    timelimit_end: float | None = None

    @property
    def multi(self) -> bool:
        return len(self.job_ids) > 1


JobBuilder = Callable[[MetricsSession, JobScope, Window], Figure]
UserBuilder = Callable[[MetricsSession, str, Window], Figure]


@dataclass(frozen=True)
class GraphSpec:
    name: str
    title: str | Promise
    source: str  # a JOBSTATS_METRICS source: job, node, lustre, power
    build: Any  # JobBuilder or UserBuilder
    gpu: bool = False  # only for jobs with GPUs
    default_delta: int = 7 * 86400  # user graphs: the default window

    def available(self) -> bool:
        return self.source in settings.JOBSTATS_METRICS and (
            self.source != "power" or "node" in settings.JOBSTATS_METRICS
        )


def _prefix(scope: JobScope, labels: dict[str, str], key: str = "slurmjobid") -> str:
    return f"{labels.get(key, '?')} · " if scope.multi else ""


def _gpu_label(gpu: str) -> str:
    """GPU index, or the short form of a MIG UUID (characters 4-12, as TT shows it)."""
    return gpu[4:12] if gpu.startswith("MIG-") else gpu


def _range(session: MetricsSession, expr: str, window: Window) -> dict[str, list[Series]]:
    return by_tag(session.query_range(expr, window))


def _sorted(series: list[Series], *keys: str) -> list[Series]:
    return sorted(series, key=lambda s: tuple(s.labels.get(k, "") for k in keys))


# --- Job graphs: slurm-job-exporter --------------------------------------------------------
def job_cpu(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    sel = job_selector("slurm_job_core_usage_total", scope.job_ids)
    rw = rate_window(window.step)
    result = _range(
        session,
        union({"used": f"sum by (slurmjobid, instance) (rate({sel}[{rw}])) / 1e9", "alloc": f"count({sel})"}),
        window,
    )
    unit = _("cores")
    traces = [
        trace(s, _prefix(scope, s.labels) + node_name(s.labels.get("instance", "")), stack=True, unit=unit)
        for s in _sorted(result.get("used", []), "slurmjobid", "instance")
    ]
    traces += [trace(s, _("Allocated"), dash="dash", unit=unit) for s in result.get("alloc", [])]
    return figure(traces, layout(_("CPU cores in use, per node"), _("Cores")), unit=unit)


MEMORY_KINDS = (
    ("limit", gettext_lazy("Allocated (limit)")),
    ("usage", gettext_lazy("Used")),
    ("max", gettext_lazy("Peak")),
    ("rss", gettext_lazy("RSS")),
    ("cache", gettext_lazy("Cache")),
    ("rss_huge", gettext_lazy("RSS, huge pages")),
    ("mapped_file", gettext_lazy("Mapped files")),
    ("active_file", gettext_lazy("Active files")),
    ("inactive_file", gettext_lazy("Inactive files")),
    ("unevictable", gettext_lazy("Unevictable")),
)


def job_mem(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    parts = {
        kind: f"sum by (slurmjobid) ({job_selector(f'slurm_job_memory_{kind}', scope.job_ids)})"
        for kind, _label in MEMORY_KINDS
    }
    result = _range(session, union(parts), window)
    unit = "GiB"
    traces = []
    for kind, label in MEMORY_KINDS:
        for s in _sorted(result.get(kind, []), "slurmjobid"):
            traces.append(
                trace(
                    s,
                    _prefix(scope, s.labels) + str(label),
                    scale=1 / GIB,
                    unit=unit,
                    dash="dash" if kind == "limit" else None,
                )
            )
    return figure(traces, layout(_("Memory"), "GiB"), unit=unit)


def job_thread(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    rw = rate_window(window.step)
    parts = {
        "processes": f"sum by (slurmjobid) ({job_selector('slurm_job_process_count', scope.job_ids)})",
        "threads": f"sum by (slurmjobid, state) ({job_selector('slurm_job_threads_count', scope.job_ids)})",
        "exe": f"sum by (slurmjobid, exe) (rate({job_selector('slurm_job_process_usage_total', scope.job_ids)}[{rw}]))",
    }
    result = _range(session, union(parts), window)
    traces = [trace(s, _prefix(scope, s.labels) + _("Processes"), unit="") for s in result.get("processes", [])]
    for s in _sorted(result.get("threads", []), "slurmjobid", "state"):
        state = s.labels.get("state", "")
        if state == "?":
            continue
        traces.append(trace(s, _prefix(scope, s.labels) + _("Threads %(state)s") % {"state": state}, unit=""))
    for s in _sorted(result.get("exe", []), "slurmjobid", "exe")[:20]:
        exe = s.labels.get("exe", "").rsplit("/", 1)[-1] or "?"
        traces.append(
            trace(s, _prefix(scope, s.labels) + _("%(exe)s (cores)") % {"exe": exe}, yaxis="y2", unit=_("cores"))
        )
    return figure(traces, layout(_("Processes and threads"), _("Count"), y2_title=_("Cores per program")), unit="")


def _per_gpu(
    session: MetricsSession,
    scope: JobScope,
    window: Window,
    metrics: Sequence[tuple[str, str]],
    *,
    keys: tuple[str, ...] = ("slurmjobid", "gpu", "gpu_type"),
) -> dict[str, list[Series]]:
    by = ", ".join(keys)
    return _range(
        session,
        union({metric: f"max by ({by}) ({job_selector(metric, scope.job_ids)})" for metric, _label in metrics}),
        window,
    )


GPU_UTILISATION = (
    ("slurm_job_utilization_gpu", gettext_lazy("SM active")),
    ("slurm_job_sm_occupancy_gpu", gettext_lazy("SM occupancy")),
    ("slurm_job_tensor_gpu", gettext_lazy("Tensor")),
    ("slurm_job_fp64_gpu", gettext_lazy("FP64")),
    ("slurm_job_fp32_gpu", gettext_lazy("FP32")),
    ("slurm_job_fp16_gpu", gettext_lazy("FP16")),
)


def job_gpu_utilization(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    metrics = [(m, str(label)) for m, label in GPU_UTILISATION]
    result = _per_gpu(session, scope, window, metrics)
    traces = [
        trace(s, f"{_prefix(scope, s.labels)}GPU {_gpu_label(s.labels.get('gpu', '?'))} {label}", unit="%")
        for metric, label in metrics
        for s in _sorted(result.get(metric, []), "slurmjobid", "gpu")
    ]
    return figure(traces, layout(_("GPU utilisation, per GPU"), "%", y_range=(0, 100)), unit="%")


def job_gpu_memory_utilization(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    result = _per_gpu(session, scope, window, [("slurm_job_utilization_gpu_memory", "")])
    traces = [
        trace(s, f"{_prefix(scope, s.labels)}GPU {_gpu_label(s.labels.get('gpu', '?'))}", unit="%")
        for s in _sorted(result.get("slurm_job_utilization_gpu_memory", []), "slurmjobid", "gpu")
    ]
    return figure(traces, layout(_("GPU memory bandwidth in use, per GPU"), "%", y_range=(0, 100)), unit="%")


def _model_of(series: list[Series], scope: JobScope) -> Any:
    types = [s.labels.get("gpu_type") for s in series if s.labels.get("gpu_type")]
    return gpu_model(types[0] if types else scope.gpu_type)


def job_gpu_memory(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    result = _per_gpu(session, scope, window, [("slurm_job_memory_usage_gpu", "")])
    series = _sorted(result.get("slurm_job_memory_usage_gpu", []), "slurmjobid", "gpu")
    model = _model_of(series, scope)
    traces = [
        trace(s, f"{_prefix(scope, s.labels)}GPU {_gpu_label(s.labels.get('gpu', '?'))}", scale=1 / GIB, unit="GiB")
        for s in series
    ]
    return figure(traces, layout(_("GPU memory, per GPU"), "GiB", y_range=(0, model.memory_gib)), unit="GiB")


def job_gpu_power(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    result = _per_gpu(session, scope, window, [("slurm_job_power_gpu", "")])
    series = _sorted(result.get("slurm_job_power_gpu", []), "slurmjobid", "gpu")
    model = _model_of(series, scope)
    traces = [
        trace(s, f"{_prefix(scope, s.labels)}GPU {_gpu_label(s.labels.get('gpu', '?'))}", scale=1 / 1000, unit="W")
        for s in series
    ]
    if series:
        traces.append(
            constant_trace([window.start, window.end], model.idle_power_w, _("Idle power of one GPU"), unit="W")
        )
    return figure(traces, layout(_("GPU power, per GPU"), "W", y_range=(0, model.full_power_w * 1.1)), unit="W")


def _gpu_link(metric: str, title: str) -> JobBuilder:
    def build(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
        result = _per_gpu(session, scope, window, [(metric, "")], keys=("slurmjobid", "gpu", "direction"))
        traces = [
            trace(
                s,
                f"{_prefix(scope, s.labels)}GPU {_gpu_label(s.labels.get('gpu', '?'))} {s.labels.get('direction', '')}",
                scale=1e-9,
                unit="GB/s",
                negative=s.labels.get("direction", "").upper() == "TX",
            )
            for s in _sorted(result.get(metric, []), "slurmjobid", "gpu", "direction")
        ]
        return figure(traces, layout(title, _("GB/s (received up, sent down)")), unit="GB/s")

    return build


# --- Job graphs: node_exporter (whole nodes, not only the job) -----------------------------
def instances(nodes: Sequence[str], template: str) -> list[str]:
    return [template.replace("{node}", node) for node in nodes]


def _node_scope(scope: JobScope) -> list[str] | None:
    if not scope.nodes or len(scope.nodes) > MAX_NODES:
        return None
    return instances(scope.nodes, settings.JOBSTATS_NODE_INSTANCE)


def _node_pair(
    metric_in: str,
    metric_out: str,
    title: str,
    unit: str,
    scale: float,
    *,
    by_device: bool,
    keep: Callable[[str], bool] = lambda device: True,
    rate: bool = True,
) -> JobBuilder:
    def build(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
        targets = _node_scope(scope)
        if targets is None:
            return no_data(title, _("Node graphs are shown for jobs on 1 to %(max)d nodes.") % {"max": MAX_NODES})
        by = "instance, device" if by_device else "instance"
        rw = rate_window(window.step)

        def expr(metric: str) -> str:
            sel = node_selector(metric, targets)
            return f"sum by ({by}) (rate({sel}[{rw}]))" if rate else f"sum by ({by}) ({sel})"

        result = _range(session, union({"in": expr(metric_in), "out": expr(metric_out)}), window)
        traces = []
        for tag, negative, word in (("in", False, _("in")), ("out", True, _("out"))):
            for s in _sorted(result.get(tag, []), "instance", "device"):
                device = s.labels.get("device", "")
                if by_device and not keep(device):
                    continue
                name = " ".join(part for part in (node_name(s.labels.get("instance", "")), device, str(word)) if part)
                traces.append(trace(s, name, scale=scale, unit=unit, negative=negative))
        return figure(traces, layout(title, f"{unit} " + _("(in up, out down)")), unit=unit)

    return build


_DISK = re.compile(r"^(nvme\d+n\d+|sd[a-z]+|vd[a-z]+)$")


def job_disk_used(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    title = _("Local disk used (whole node)")
    targets = _node_scope(scope)
    if targets is None:
        return no_data(title, _("Node graphs are shown for jobs on 1 to %(max)d nodes.") % {"max": MAX_NODES})
    mount = settings.JOBSTATS_LOCAL_SCRATCH
    size = node_selector("node_filesystem_size_bytes", targets, mountpoint=mount)
    avail = node_selector("node_filesystem_avail_bytes", targets, mountpoint=mount)
    result = _range(
        session,
        union({"used": f"max by (instance) ({size} - {avail})", "size": f"max by (instance) ({size})"}),
        window,
    )
    traces = [
        trace(s, node_name(s.labels.get("instance", "")), scale=1e-9, unit="GB")
        for s in _sorted(result.get("used", []), "instance")
    ]
    traces += [
        trace(
            s,
            _("%(node)s size") % {"node": node_name(s.labels.get("instance", ""))},
            scale=1e-9,
            unit="GB",
            dash="dash",
        )
        for s in _sorted(result.get("size", []), "instance")
    ]
    return figure(traces, layout(title, "GB"), unit="GB")


# --- Job graphs: Lustre ------------------------------------------------------------------------
def job_lustre_mdt(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    rw = rate_window(window.step)
    sel = job_selector("lustre_job_stats_total", scope.job_ids, label="jobid", component="mdt")
    result = _range(session, union({"ops": f"sum by (jobid, fs, operation) (rate({sel}[{rw}]))"}), window)
    traces = [
        trace(
            s,
            f"{_prefix(scope, s.labels, 'jobid')}{s.labels.get('fs', '?')} {s.labels.get('operation', '')}",
            unit=_("ops/s"),
        )
        for s in _sorted(result.get("ops", []), "jobid", "fs", "operation")
    ]
    return figure(traces, layout(_("Lustre metadata operations"), _("Operations/s")), unit=_("ops/s"))


def job_lustre_ost(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    rw = rate_window(window.step)
    parts = {
        direction: f"sum by (jobid, fs) (rate({job_selector(f'lustre_job_{direction}_bytes_total', scope.job_ids, label='jobid', component='ost')}[{rw}]))"
        for direction in ("read", "write")
    }
    result = _range(session, union(parts), window)
    traces = []
    for direction, word in (("read", _("read")), ("write", _("write"))):
        for s in _sorted(result.get(direction, []), "jobid", "fs"):
            traces.append(
                trace(
                    s,
                    f"{_prefix(scope, s.labels, 'jobid')}{s.labels.get('fs', '?')} {word}",
                    scale=1 / MIB,
                    unit="MiB/s",
                    negative=direction == "write",
                )
            )
    return figure(traces, layout(_("Lustre bandwidth"), _("MiB/s (read up, write down)")), unit="MiB/s")


# --- Job graphs: power (redfish + node_exporter), domain 4.3 ------------------------------
@dataclass(frozen=True)
class NodePower:
    node: str
    timestamps: list[float]
    watts: list[float | None]


def node_power(session: MetricsSession, scope: JobScope, window: Window) -> list[NodePower]:
    """The job's estimated power on each node (domain 4.3), as series."""
    nodes = list(scope.nodes)
    if not nodes or len(nodes) > MAX_NODES:
        return []
    # Each exporter names a node its own way (nc1-oob, nc1:9100, nc1:9445): map them back.
    names: dict[str, str] = {}
    for template in (
        settings.JOBSTATS_POWER_INSTANCE,
        settings.JOBSTATS_NODE_INSTANCE,
        settings.JOBSTATS_NODE_GPU_POWER_INSTANCE,
    ):
        names.update(zip(instances(nodes, template), nodes, strict=True))
    power = node_selector(settings.JOBSTATS_POWER_METRIC, instances(nodes, settings.JOBSTATS_POWER_INSTANCE))
    cores = node_selector("node_cpu_seconds_total", instances(nodes, settings.JOBSTATS_NODE_INSTANCE), mode="idle")
    parts = {"chassis": f"max by (instance) ({power})", "cores": f"count by (instance) ({cores})"}
    if scope.gpus:
        gpu_sel = node_selector(
            "nvidia_gpu_power_usage_milliwatts", instances(nodes, settings.JOBSTATS_NODE_GPU_POWER_INSTANCE)
        )
        parts["node_gpu_w"] = f"sum by (instance) ({gpu_sel}) / 1000"
        parts["node_gpus"] = f"count by (instance) ({gpu_sel})"
        parts["job_gpu_w"] = f"sum by (instance) ({job_selector('slurm_job_power_gpu', scope.job_ids)}) / 1000"
    result = _range(session, union(parts), window)

    def per_node(tag: str) -> dict[str, dict[float, float]]:
        found: dict[str, dict[float, float]] = {}
        for s in result.get(tag, []):
            instance = s.labels.get("instance", "")
            values = {t: v for t, v in zip(s.timestamps, s.values, strict=False) if finite(v) is not None}
            found.setdefault(names.get(instance, node_name(instance)), {}).update(values)
        return found

    chassis, node_cores = per_node("chassis"), per_node("cores")
    node_gpu_w, node_gpus, job_gpu_w = per_node("node_gpu_w"), per_node("node_gpus"), per_node("job_gpu_w")
    cores_here = scope.cpus / len(nodes)
    gpus_here = scope.gpus / len(nodes)
    estimates = []
    for node in nodes:
        times = sorted(chassis.get(node, {}))
        watts: list[float | None] = []
        for t in times:
            total = chassis[node][t]
            if scope.gpus:
                all_gpu_w = node_gpu_w.get(node, {}).get(t)
                count = node_gpus.get(node, {}).get(t)
                own = job_gpu_w.get(node, {}).get(t, 0.0)
                if all_gpu_w is None or not count:
                    watts.append(None)
                    continue
                watts.append(max(total - all_gpu_w, 0.0) * min(gpus_here / count, 1.0) + own)
            else:
                count = node_cores.get(node, {}).get(t)
                watts.append(total * min(cores_here / count, 1.0) if count else None)
        estimates.append(NodePower(node, times, watts))
    return estimates


def job_power(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    estimates = node_power(session, scope, window)
    traces = [
        trace(
            Series({}, p.timestamps, [w if w is not None else float("nan") for w in p.watts]),
            p.node,
            stack=True,
            unit="W",
        )
        for p in estimates
    ]
    return figure(traces, layout(_("Estimated power of the job, per node"), "W"), unit="W")


JOB_GRAPHS: dict[str, GraphSpec] = {
    spec.name: spec
    for spec in (
        GraphSpec("cpu", gettext_lazy("CPU cores in use"), "job", job_cpu),
        GraphSpec("mem", gettext_lazy("Memory"), "job", job_mem),
        GraphSpec("thread", gettext_lazy("Processes and threads"), "job", job_thread),
        GraphSpec("gpu_utilization", gettext_lazy("GPU utilisation"), "job", job_gpu_utilization, gpu=True),
        GraphSpec(
            "gpu_memory_utilization", gettext_lazy("GPU memory bandwidth"), "job", job_gpu_memory_utilization, gpu=True
        ),
        GraphSpec("gpu_memory", gettext_lazy("GPU memory"), "job", job_gpu_memory, gpu=True),
        GraphSpec("gpu_power", gettext_lazy("GPU power"), "job", job_gpu_power, gpu=True),
        GraphSpec(
            "gpu_pcie",
            gettext_lazy("GPU PCIe traffic"),
            "job",
            _gpu_link("slurm_job_pcie_gpu", gettext_lazy("GPU PCIe traffic")),
            gpu=True,
        ),
        GraphSpec(
            "gpu_nvlink",
            gettext_lazy("GPU NVLink traffic"),
            "job",
            _gpu_link("slurm_job_nvlink_gpu", gettext_lazy("GPU NVLink traffic")),
            gpu=True,
        ),
        GraphSpec("lustre_mdt", gettext_lazy("Lustre metadata"), "lustre", job_lustre_mdt),
        GraphSpec("lustre_ost", gettext_lazy("Lustre bandwidth"), "lustre", job_lustre_ost),
        GraphSpec(
            "ethernet_bdw",
            gettext_lazy("Ethernet (whole node)"),
            "node",
            _node_pair(
                "node_network_receive_bytes_total",
                "node_network_transmit_bytes_total",
                gettext_lazy("Ethernet bandwidth (whole node)"),
                "Mb/s",
                8e-6,
                by_device=True,
                keep=lambda device: device != "lo" and not device.startswith("ib"),
            ),
        ),
        GraphSpec(
            "infiniband_bdw",
            gettext_lazy("InfiniBand (whole node)"),
            "node",
            _node_pair(
                "node_infiniband_port_data_received_bytes_total",
                "node_infiniband_port_data_transmitted_bytes_total",
                gettext_lazy("InfiniBand bandwidth (whole node)"),
                "Gb/s",
                8e-9,
                by_device=False,
            ),
        ),
        GraphSpec(
            "disk_iops",
            gettext_lazy("Local disk operations (whole node)"),
            "node",
            _node_pair(
                "node_disk_reads_completed_total",
                "node_disk_writes_completed_total",
                gettext_lazy("Local disk operations (whole node)"),
                "IOPS",
                1.0,
                by_device=True,
                keep=lambda device: bool(_DISK.match(device)),
            ),
        ),
        GraphSpec(
            "disk_bdw",
            gettext_lazy("Local disk bandwidth (whole node)"),
            "node",
            _node_pair(
                "node_disk_read_bytes_total",
                "node_disk_written_bytes_total",
                gettext_lazy("Local disk bandwidth (whole node)"),
                "MB/s",
                1e-6,
                by_device=True,
                keep=lambda device: bool(_DISK.match(device)),
            ),
        ),
        GraphSpec("disk_used", gettext_lazy("Local disk used (whole node)"), "node", job_disk_used),
        GraphSpec("power", gettext_lazy("Estimated power"), "power", job_power),
    )
}


def job_graphs_for(gpus: int, nodes: int) -> list[GraphSpec]:
    """The graphs worth showing for a job (GPU graphs for GPU jobs, node graphs for small jobs)."""
    shown = []
    for spec in JOB_GRAPHS.values():
        if not spec.available() or (spec.gpu and not gpus):
            continue
        if spec.source in ("node", "power") and not 0 < nodes <= MAX_NODES:
            continue
        shown.append(spec)
    return shown


def build_job_graph(name: str, session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    spec = JOB_GRAPHS[name]
    if not spec.available():
        return no_data(str(spec.title), _("This cluster does not collect these metrics."))
    return spec.build(session, scope, window)  # type: ignore[no-any-return]


# --- User graphs ------------------------------------------------------------------------------
def _user(metric: str, username: str, **labels: str) -> str:
    return promql.selector(metric, {"user": username, **labels})


def user_expressions(username: str, step: int) -> dict[str, str]:
    """The user's current-use series (raw exporter series, or recording rules, domain 4.4)."""
    if settings.JOBSTATS_RECORDING_RULES:
        return {
            "cores_used": f"sum({_user('slurm_job:used_core:sum_user_account', username)})",
            "cores_alloc": f"sum({_user('slurm_job:allocated_core:count_user_account', username)})",
            "mem_alloc": f"sum({_user('slurm_job:allocated_memory:sum_user_account', username)})",
            "mem_max": f"sum({_user('slurm_job:max_memory:sum_user_account', username)})",
            "mem_rss": f"sum({_user('slurm_job:rss_memory:sum_user_account', username)})",
            "gpus_alloc": f"sum({_user('slurm_job:allocated_gpu:count_user_account', username)})",
            "gpus_used": f"sum({_user('slurm_job:used_gpu:sum_user_account', username)})",
        }
    rw = rate_window(step)
    return {
        "cores_used": f"sum(rate({_user('slurm_job_core_usage_total', username)}[{rw}])) / 1e9",
        "cores_alloc": f"count({_user('slurm_job_core_usage_total', username)})",
        "mem_alloc": f"sum({_user('slurm_job_memory_limit', username)})",
        "mem_max": f"sum({_user('slurm_job_memory_max', username)})",
        "mem_rss": f"sum({_user('slurm_job_memory_rss', username)})",
        "gpus_alloc": f"count({_user('slurm_job_utilization_gpu', username)})",
        "gpus_used": f"sum({_user('slurm_job_utilization_gpu', username)}) / 100",
    }


def _user_lines(
    session: MetricsSession,
    username: str,
    window: Window,
    lines: Sequence[tuple[str, str, float, str | None]],
    title: str,
    unit: str,
) -> Figure:
    expressions = user_expressions(username, window.step)
    result = _range(session, union({tag: expressions[tag] for tag, *_rest in lines}), window)
    traces = [
        trace(s, label, scale=scale, unit=unit, dash=dash)
        for tag, label, scale, dash in lines
        for s in result.get(tag, [])
    ]
    return figure(traces, layout(title, unit), unit=unit)


def user_cpu(session: MetricsSession, username: str, window: Window) -> Figure:
    lines = [("cores_used", _("Used"), 1.0, None), ("cores_alloc", _("Allocated"), 1.0, "dash")]
    return _user_lines(session, username, window, lines, _("CPU cores"), _("cores"))


def user_mem(session: MetricsSession, username: str, window: Window) -> Figure:
    lines = [
        ("mem_alloc", _("Allocated"), 1 / GIB, "dash"),
        ("mem_max", _("Peak used"), 1 / GIB, None),
        ("mem_rss", _("RSS"), 1 / GIB, None),
    ]
    return _user_lines(session, username, window, lines, _("Memory"), "GiB")


def user_gpu_utilization(session: MetricsSession, username: str, window: Window) -> Figure:
    lines = [("gpus_used", _("Used (full-GPU equivalents)"), 1.0, None), ("gpus_alloc", _("Allocated"), 1.0, "dash")]
    return _user_lines(session, username, window, lines, _("GPUs"), _("GPUs"))


def user_gpu_power(session: MetricsSession, username: str, window: Window) -> Figure:
    util = _user("slurm_job_utilization_gpu", username)
    parts = {
        "count": f"count by (gpu_type) ({util})",
        "used": f"sum({_user('slurm_job_power_gpu', username)}) / 1000",
    }
    result = _range(session, union(parts), window)
    allocated: dict[float, float] = {}
    idle: dict[float, float] = {}
    for s in result.get("count", []):
        model = gpu_model(s.labels.get("gpu_type"))
        for t, v in zip(s.timestamps, s.values, strict=False):
            if finite(v) is None:
                continue
            allocated[t] = allocated.get(t, 0.0) + v * model.full_power_w
            idle[t] = idle.get(t, 0.0) + v * model.idle_power_w
    traces = [trace(s, _("Used"), unit="W") for s in result.get("used", [])]
    if allocated:
        times = sorted(allocated)
        traces.append(
            trace(Series({}, times, [allocated[t] for t in times]), _("Allocated (full power)"), unit="W", dash="dash")
        )
        traces.append(trace(Series({}, times, [idle[t] for t in times]), _("Idle power"), unit="W", dash="dot"))
    return figure(traces, layout(_("GPU power"), "W"), unit="W")


def user_lustre_mdt(session: MetricsSession, username: str, window: Window) -> Figure:
    if settings.JOBSTATS_RECORDING_RULES:
        expr = f"sum by (fs, operation) ({_user('lustre:metadata:rate3m_user', username)})"
    else:
        expr = f"sum by (fs, operation) (rate({_user('lustre_job_stats_total', username, component='mdt')}[{rate_window(window.step)}]))"
    result = _range(session, union({"ops": expr}), window)
    traces = [
        trace(s, f"{s.labels.get('fs', '?')} {s.labels.get('operation', '')}", unit=_("ops/s"))
        for s in _sorted(result.get("ops", []), "fs", "operation")
    ]
    return figure(traces, layout(_("Lustre metadata operations"), _("Operations/s")), unit=_("ops/s"))


def user_lustre_ost(session: MetricsSession, username: str, window: Window) -> Figure:
    parts = {}
    for direction in ("read", "write"):
        if settings.JOBSTATS_RECORDING_RULES:
            parts[direction] = f"sum by (fs) ({_user(f'lustre:{direction}_bytes:rate3m_user', username)})"
        else:
            sel = _user(f"lustre_job_{direction}_bytes_total", username, component="ost")
            parts[direction] = f"sum by (fs) (rate({sel}[{rate_window(window.step)}]))"
    result = _range(session, union(parts), window)
    traces = [
        trace(s, f"{s.labels.get('fs', '?')} {word}", scale=1 / MIB, unit="MiB/s", negative=direction == "write")
        for direction, word in (("read", _("read")), ("write", _("write")))
        for s in _sorted(result.get(direction, []), "fs")
    ]
    return figure(traces, layout(_("Lustre bandwidth"), _("MiB/s (read up, write down)")), unit="MiB/s")


USER_GRAPHS: dict[str, GraphSpec] = {
    spec.name: spec
    for spec in (
        GraphSpec("cpu", gettext_lazy("CPU cores"), "job", user_cpu),
        GraphSpec("mem", gettext_lazy("Memory"), "job", user_mem),
        GraphSpec("gpu_utilization", gettext_lazy("GPUs"), "job", user_gpu_utilization, default_delta=7 * 86400),
        GraphSpec("gpu_power", gettext_lazy("GPU power"), "job", user_gpu_power, default_delta=2 * 86400),
        GraphSpec("lustre_mdt", gettext_lazy("Lustre metadata"), "lustre", user_lustre_mdt, default_delta=6 * 3600),
        GraphSpec("lustre_ost", gettext_lazy("Lustre bandwidth"), "lustre", user_lustre_ost, default_delta=6 * 3600),
    )
}


def build_user_graph(name: str, session: MetricsSession, username: str, window: Window) -> Figure:
    spec = USER_GRAPHS[name]
    if not spec.available():
        return no_data(str(spec.title), _("This cluster does not collect these metrics."))
    return spec.build(session, username, window)  # type: ignore[no-any-return]
