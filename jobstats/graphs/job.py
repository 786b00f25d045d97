"""A job's graphs from slurm-job-exporter and Lustre, and the registry of every job graph."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from jobstats.domain.gpu_models import GpuModel, gpu_model
from jobstats.graphs.common import (
    GIB,
    MAX_NODES,
    GraphSpec,
    JobBuilder,
    JobScope,
    gpu_label,
    lustre_bandwidth,
    prefix,
    range_by_tag,
    sorted_by,
)
from jobstats.graphs.node import DISK, job_disk_used, job_power, node_pair
from userportal.figures import Figure, constant_trace, figure, layout, trace
from userportal.prometheus import MetricsSession, Series
from userportal.promql import job_selector, node_name, union
from userportal.windows import Window, job_counter_rate, rate_window, step_mean


# --- Job graphs: slurm-job-exporter --------------------------------------------------------
def job_cpu(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    sel = job_selector("slurm_job_core_usage_total", scope.job_ids)
    used = job_counter_rate(sel, window.step, by="slurmjobid, instance")
    result = range_by_tag(
        session, union({"used": f"{used} / 1e9", "alloc": step_mean(f"count({sel})", window.step)}), window
    )
    unit = _("cores")
    traces = [
        trace(s, prefix(scope, s.labels) + node_name(s.labels.get("instance", "")), stack=True, unit=unit)
        for s in sorted_by(result.get("used", []), "slurmjobid", "instance")
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
    result = range_by_tag(session, union(parts), window)
    unit = "GiB"
    traces = []
    for kind, label in MEMORY_KINDS:
        for s in sorted_by(result.get(kind, []), "slurmjobid"):
            traces.append(
                trace(
                    s,
                    prefix(scope, s.labels) + str(label),
                    scale=1 / GIB,
                    unit=unit,
                    dash="dash" if kind == "limit" else None,
                )
            )
    return figure(traces, layout(_("Memory"), "GiB"), unit=unit)


def job_thread(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    parts = {
        "processes": f"sum by (slurmjobid) ({job_selector('slurm_job_process_count', scope.job_ids)})",
        "threads": f"sum by (slurmjobid, state) ({job_selector('slurm_job_threads_count', scope.job_ids)})",
        "exe": job_counter_rate(
            job_selector("slurm_job_process_usage_total", scope.job_ids), window.step, by="slurmjobid, exe"
        ),
    }
    result = range_by_tag(session, union(parts), window)
    traces = [trace(s, prefix(scope, s.labels) + _("Processes"), unit="") for s in result.get("processes", [])]
    for s in sorted_by(result.get("threads", []), "slurmjobid", "state"):
        state = s.labels.get("state", "")
        if state == "?":
            continue
        traces.append(trace(s, prefix(scope, s.labels) + _("Threads %(state)s") % {"state": state}, unit=""))
    for s in sorted_by(result.get("exe", []), "slurmjobid", "exe")[:20]:
        exe = s.labels.get("exe", "").rsplit("/", 1)[-1] or "?"
        traces.append(
            trace(s, prefix(scope, s.labels) + _("%(exe)s (cores)") % {"exe": exe}, yaxis="y2", unit=_("cores"))
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
    return range_by_tag(
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
        trace(s, f"{prefix(scope, s.labels)}GPU {gpu_label(s.labels.get('gpu', '?'))} {label}", unit="%")
        for metric, label in metrics
        for s in sorted_by(result.get(metric, []), "slurmjobid", "gpu")
    ]
    return figure(traces, layout(_("GPU utilisation, per GPU"), "%", y_range=(0, 100)), unit="%")


def job_gpu_memory_utilization(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    result = _per_gpu(session, scope, window, [("slurm_job_utilization_gpu_memory", "")])
    traces = [
        trace(s, f"{prefix(scope, s.labels)}GPU {gpu_label(s.labels.get('gpu', '?'))}", unit="%")
        for s in sorted_by(result.get("slurm_job_utilization_gpu_memory", []), "slurmjobid", "gpu")
    ]
    return figure(traces, layout(_("GPU memory bandwidth in use, per GPU"), "%", y_range=(0, 100)), unit="%")


def _model_of(series: list[Series], scope: JobScope) -> GpuModel:
    types = [s.labels.get("gpu_type") for s in series if s.labels.get("gpu_type")]
    return gpu_model(types[0] if types else scope.gpu_type)


def job_gpu_memory(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    result = _per_gpu(session, scope, window, [("slurm_job_memory_usage_gpu", "")])
    series = sorted_by(result.get("slurm_job_memory_usage_gpu", []), "slurmjobid", "gpu")
    model = _model_of(series, scope)
    traces = [
        trace(s, f"{prefix(scope, s.labels)}GPU {gpu_label(s.labels.get('gpu', '?'))}", scale=1 / GIB, unit="GiB")
        for s in series
    ]
    return figure(traces, layout(_("GPU memory, per GPU"), "GiB", y_range=(0, model.memory_gib)), unit="GiB")


def job_gpu_power(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    result = _per_gpu(session, scope, window, [("slurm_job_power_gpu", "")])
    series = sorted_by(result.get("slurm_job_power_gpu", []), "slurmjobid", "gpu")
    model = _model_of(series, scope)
    traces = [
        trace(s, f"{prefix(scope, s.labels)}GPU {gpu_label(s.labels.get('gpu', '?'))}", scale=1 / 1000, unit="W")
        for s in series
    ]
    if series:
        traces.append(
            constant_trace([window.start, window.end], model.idle_power_w, _("Idle power of one GPU"), unit="W")
        )
    return figure(traces, layout(_("GPU power, per GPU"), "W", y_range=(0, model.full_power_w * 1.1)), unit="W")


def _gpu_link(metric: str, title: str | Promise) -> JobBuilder:
    def build(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
        result = _per_gpu(session, scope, window, [(metric, "")], keys=("slurmjobid", "gpu", "direction"))
        traces = [
            trace(
                s,
                f"{prefix(scope, s.labels)}GPU {gpu_label(s.labels.get('gpu', '?'))} {s.labels.get('direction', '')}",
                scale=1e-9,
                unit="GB/s",
                negative=s.labels.get("direction", "").upper() == "TX",
            )
            for s in sorted_by(result.get(metric, []), "slurmjobid", "gpu", "direction")
        ]
        return figure(traces, layout(str(title), _("GB/s (received up, sent down)")), unit="GB/s")

    return build


# --- Job graphs: Lustre ------------------------------------------------------------------------
def job_lustre_mdt(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    rw = rate_window(window.step)
    sel = job_selector("lustre_job_stats_total", scope.job_ids, label="jobid", component="mdt")
    result = range_by_tag(session, union({"ops": f"sum by (jobid, fs, operation) (rate({sel}[{rw}]))"}), window)
    traces = [
        trace(
            s,
            f"{prefix(scope, s.labels, 'jobid')}{s.labels.get('fs', '?')} {s.labels.get('operation', '')}",
            unit=_("ops/s"),
        )
        for s in sorted_by(result.get("ops", []), "jobid", "fs", "operation")
    ]
    return figure(traces, layout(_("Lustre metadata operations"), _("Operations/s")), unit=_("ops/s"))


def job_lustre_ost(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    rw = rate_window(window.step)
    parts = {
        direction: f"sum by (jobid, fs) (rate({job_selector(f'lustre_job_{direction}_bytes_total', scope.job_ids, label='jobid', component='ost')}[{rw}]))"
        for direction in ("read", "write")
    }
    return lustre_bandwidth(
        range_by_tag(session, union(parts), window),
        lambda s, word: f"{prefix(scope, s.labels, 'jobid')}{s.labels.get('fs', '?')} {word}",
        "jobid",
        "fs",
    )


JOB_GRAPHS: dict[str, GraphSpec[JobScope]] = {
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
            node_pair(
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
            node_pair(
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
            node_pair(
                "node_disk_reads_completed_total",
                "node_disk_writes_completed_total",
                gettext_lazy("Local disk operations (whole node)"),
                "IOPS",
                1.0,
                by_device=True,
                keep=lambda device: bool(DISK.match(device)),
            ),
        ),
        GraphSpec(
            "disk_bdw",
            gettext_lazy("Local disk bandwidth (whole node)"),
            "node",
            node_pair(
                "node_disk_read_bytes_total",
                "node_disk_written_bytes_total",
                gettext_lazy("Local disk bandwidth (whole node)"),
                "MB/s",
                1e-6,
                by_device=True,
                keep=lambda device: bool(DISK.match(device)),
            ),
        ),
        GraphSpec("disk_used", gettext_lazy("Local disk used (whole node)"), "node", job_disk_used),
        GraphSpec("power", gettext_lazy("Estimated power"), "power", job_power),
    )
}


def job_graphs_for(gpus: int, nodes: int) -> list[GraphSpec[JobScope]]:
    """The graphs worth showing for a job (GPU graphs for GPU jobs, node graphs for small jobs)."""
    shown = []
    for spec in JOB_GRAPHS.values():
        if not spec.available() or (spec.gpu and not gpus):
            continue
        if spec.source in ("node", "power") and not 0 < nodes <= MAX_NODES:
            continue
        shown.append(spec)
    return shown
