"""A user's graphs: current use over a period (raw exporter series, or recording rules, domain 4.4)."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from jobstats.domain.gpu_models import gpu_model
from jobstats.graphs.common import GIB, GraphSpec, lustre_bandwidth, range_by_tag, sorted_by
from userportal import promql
from userportal.figures import Figure, figure, layout, trace
from userportal.prometheus import MetricsSession, Series, finite
from userportal.promql import union
from userportal.windows import DAY, HOUR, Window, job_counter_rate, rate_window, step_mean


def _user(metric: str, username: str, **labels: str) -> str:
    return promql.selector(metric, {"user": username, **labels})


def user_expressions(username: str, step: int) -> dict[str, str]:
    """The user's current-use series for points ``step`` apart: raw exporter series, or recording rules (4.4).

    Each point is the mean of its step while the user had jobs (userportal.windows.step_mean), the
    cores in use included (job_counter_rate), so used and allocated cover the same time.
    """
    if settings.JOBSTATS_RECORDING_RULES:
        rules = {
            "cores_used": "slurm_job:used_core:sum_user_account",
            "cores_alloc": "slurm_job:allocated_core:count_user_account",
            "mem_alloc": "slurm_job:allocated_memory:sum_user_account",
            "mem_max": "slurm_job:max_memory:sum_user_account",
            "mem_rss": "slurm_job:rss_memory:sum_user_account",
            "gpus_alloc": "slurm_job:allocated_gpu:count_user_account",
            "gpus_used": "slurm_job:used_gpu:sum_user_account",
        }
        return {tag: step_mean(f"sum({_user(rule, username)})", step) for tag, rule in rules.items()}
    gauges = {
        "cores_alloc": f"count({_user('slurm_job_core_usage_total', username)})",
        "mem_alloc": f"sum({_user('slurm_job_memory_limit', username)})",
        "mem_max": f"sum({_user('slurm_job_memory_max', username)})",
        "mem_rss": f"sum({_user('slurm_job_memory_rss', username)})",
        "gpus_alloc": f"count({_user('slurm_job_utilization_gpu', username)})",
        "gpus_used": f"sum({_user('slurm_job_utilization_gpu', username)}) / 100",
    }
    return {
        "cores_used": f"{job_counter_rate(_user('slurm_job_core_usage_total', username), step)} / 1e9",
        **{tag: step_mean(expr, step) for tag, expr in gauges.items()},
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
    result = range_by_tag(session, union({tag: expressions[tag] for tag, *_rest in lines}), window)
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
    result = range_by_tag(session, union(parts), window)
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
    result = range_by_tag(session, union({"ops": expr}), window)
    traces = [
        trace(s, f"{s.labels.get('fs', '?')} {s.labels.get('operation', '')}", unit=_("ops/s"))
        for s in sorted_by(result.get("ops", []), "fs", "operation")
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
    result = range_by_tag(session, union(parts), window)
    return lustre_bandwidth(result, lambda s, word: f"{s.labels.get('fs', '?')} {word}", "fs")


USER_GRAPHS: dict[str, GraphSpec[str]] = {
    spec.name: spec
    for spec in (
        GraphSpec("cpu", gettext_lazy("CPU cores"), "job", user_cpu),
        GraphSpec("mem", gettext_lazy("Memory"), "job", user_mem),
        GraphSpec("gpu_utilization", gettext_lazy("GPUs"), "job", user_gpu_utilization, default_delta=7 * DAY),
        GraphSpec("gpu_power", gettext_lazy("GPU power"), "job", user_gpu_power, default_delta=2 * DAY),
        GraphSpec("lustre_mdt", gettext_lazy("Lustre metadata"), "lustre", user_lustre_mdt, default_delta=6 * HOUR),
        GraphSpec("lustre_ost", gettext_lazy("Lustre bandwidth"), "lustre", user_lustre_ost, default_delta=6 * HOUR),
    )
}
