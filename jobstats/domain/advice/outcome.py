"""Built-in rules on how the job ended: out of memory, time limit, node failures, short jobs."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from jobstats.domain.advice.facts import AdviceRule, Severity

RULES: tuple[AdviceRule, ...] = (
    AdviceRule(
        "oom",
        Severity.CRITICAL,
        _("The job ran out of memory and was killed. Ask for more memory (--mem or --mem-per-cpu) than its peak."),
        "out-of-memory",
        lambda f: f.state == "OUT_OF_MEMORY",
        highlights=("mem",),
    ),
    AdviceRule(
        "timeout",
        Severity.WARNING,
        _("The job reached its time limit and was stopped before it finished. Ask for more time or save checkpoints."),
        "time-limit",
        lambda f: f.state == "TIMEOUT",
    ),
    AdviceRule(
        "node-failure",
        Severity.CRITICAL,
        _(
            "A node of the job failed. This is probably not your fault; resubmit the job, and tell us if it happens again."
        ),
        "node-failure",
        lambda f: f.state == "NODE_FAIL",
    ),
    AdviceRule(
        "node-events",
        Severity.INFO,
        _(
            "{node_events} node event(s) (down or drained nodes) happened around the time of this job; see the list below."
        ),
        "node-failure",
        lambda f: f.node_events > 0 and f.state != "NODE_FAIL",
    ),
    AdviceRule(
        "short-job-short-limit",
        Severity.CRITICAL,
        _(
            "This job asked for less than an hour. Many short jobs load the scheduler: bundle them with GNU parallel or GLOST."
        ),
        "short-jobs",
        lambda f: f.state == "COMPLETED" and 0 < f.timelimit_minutes < 60,
    ),
    AdviceRule(
        "short-job",
        Severity.WARNING,
        _("This job ran for less than an hour. If you run many like it, bundle them into fewer, longer jobs."),
        "short-jobs",
        lambda f: f.state == "COMPLETED" and f.timelimit_minutes >= 60 and f.elapsed_seconds < 3600,
    ),
)
