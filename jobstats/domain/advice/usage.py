"""Built-in rules on what the job used: cores, memory, GPUs, threads and nodes (Prometheus, else accounting)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from jobstats.domain.advice.facts import AdviceRule, Severity

RULES: tuple[AdviceRule, ...] = (
    AdviceRule(
        "serial-on-many-cores",
        Severity.CRITICAL,
        _("The job asked for {cores} cores but used less than one on average: it looks serial. Ask for one core."),
        "parallel-jobs",
        lambda f: f.started and f.cores > 1 and f.cores_used is not None and f.cores_used < 1,
        highlights=("cpu",),
    ),
    AdviceRule(
        "cpu-under-half",
        Severity.CRITICAL,
        _("The job used {cores_used:.1f} of its {cores} cores on average, less than half. Ask for fewer cores."),
        "cpu-efficiency",
        lambda f: f.started and f.cores > 1 and f.cores_used is not None and 1 <= f.cores_used < f.cores / 2,
        highlights=("cpu",),
    ),
    AdviceRule(
        "memory-under-tenth",
        Severity.CRITICAL,
        _(
            "The job used {mem_max_mb:.0f} MB at most of the {memory_mb} MB it asked for (less than 10%). Ask for less memory."
        ),
        "memory",
        lambda f: (
            f.started
            and not f.running
            and f.memory_mb > 0
            and f.mem_max_mb is not None
            and f.mem_max_mb < f.memory_mb / 10
        ),
        highlights=("mem",),
    ),
    AdviceRule(
        "idle-gpus",
        Severity.CRITICAL,
        # xgettext:no-python-format
        _(
            "The GPUs were busy {gpu_util:.0f}% of the time on average. Check that your program uses the GPUs, or run it on CPUs."
        ),
        "gpu-efficiency",
        lambda f: f.started and f.gpus > 0 and f.gpu_util is not None and f.gpu_util < 20,
        highlights=("gpu_utilization",),
    ),
    AdviceRule(
        "unseen-gpus",
        Severity.WARNING,
        _("The job had {gpus} GPU(s) but programs ran on only {gpus_seen}: the others stayed idle."),
        "gpu-efficiency",
        lambda f: f.started and f.gpus_seen is not None and 0 < f.gpus_seen < f.gpus,
        highlights=("gpu_utilization",),
    ),
    AdviceRule(
        "oversubscribed-threads",
        Severity.WARNING,
        _(
            "On average {threads_running:.1f} threads were running on {cores} cores: they compete for the cores. Match the thread count (e.g. OMP_NUM_THREADS) to the cores."
        ),
        "threads",
        lambda f: f.threads_running is not None and f.cores > 0 and f.threads_running > 1.25 * f.cores,
        highlights=("thread",),
    ),
    AdviceRule(
        "undersubscribed-threads",
        Severity.WARNING,
        _(
            "On average only {threads_running:.1f} threads were running on {cores} cores. Start as many threads or processes as cores."
        ),
        "threads",
        lambda f: f.threads_running is not None and f.cores > 1 and f.threads_running < 0.75 * f.cores,
        highlights=("thread",),
    ),
    AdviceRule(
        "multi-node",
        Severity.INFO,
        _(
            "The job ran on {nodes} nodes: make sure your program communicates between nodes (MPI); others use only the first node."
        ),
        "parallel-jobs",
        lambda f: f.nodes > 1,
    ),
)
