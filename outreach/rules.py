"""The patterns outreach looks for in a user's finished jobs: one small class each, its threshold a setting.

A rule reads the figures the job page computed (userportal.jobreview.ReviewedJob: CPU efficiency,
memory peak against the request, GPU use, the cost of the unused share) and never computes one
itself. Per-job rules pick the jobs that show the pattern; the others look at the user's jobs as
a whole (many very short jobs, jobs that keep reaching their time limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from userportal.jobreview import ReviewedJob


@dataclass(frozen=True)
class RuleFinding:
    rule: OutreachRule
    jobs: list[ReviewedJob]  # the jobs showing the pattern, the most wasteful first
    summary: str  # one sentence with the figures

    @property
    def unused_cost(self) -> float | None:
        costs = [job.unused_cost for job in self.jobs if job.unused_cost is not None]
        return sum(costs) if costs else None

    @property
    def currency(self) -> str:
        return next((job.currency for job in self.jobs if job.currency), "")


class OutreachRule:
    id: ClassVar[str]
    title: ClassVar[str | Promise]
    advice: ClassVar[str | Promise]  # what to do about it, in one or two sentences

    def find(self, jobs: Sequence[ReviewedJob]) -> RuleFinding | None:
        raise NotImplementedError

    def threshold(self) -> str:
        """The rule's settings in one sentence (the staff page shows it)."""
        raise NotImplementedError


class IdleGpus(OutreachRule):
    id = "idle-gpu"
    title = _("GPUs allocated but idle")
    advice = _(
        "A GPU hour costs far more than a core hour. Check that your program uses the GPU (a CUDA build, "
        "the device it is given), or run it on CPU nodes; test interactively with a short job first."
    )

    def threshold(self) -> str:
        return gettext("GPU jobs of at least %(hours)g hours whose GPUs were under %(percent)g %% busy.") % {
            "hours": settings.OUTREACH_GPU_IDLE_HOURS,
            "percent": settings.OUTREACH_GPU_IDLE_PERCENT,
        }

    def find(self, jobs: Sequence[ReviewedJob]) -> RuleFinding | None:
        found = [
            job
            for job in jobs
            if job.gpus
            and job.gpu_fraction is not None
            and job.gpu_fraction * 100 < settings.OUTREACH_GPU_IDLE_PERCENT
            and job.elapsed_seconds >= settings.OUTREACH_GPU_IDLE_HOURS * 3600
        ]
        if not found:
            return None
        found.sort(key=lambda job: (-job.waste_gpu_hours, -job.end))
        hours = sum(job.gpu_hours for job in found)
        summary = ngettext(
            "%(n)d GPU job held %(hours).1f GPU-hours with its GPUs under %(percent)g %% busy.",
            "%(n)d GPU jobs held %(hours).1f GPU-hours with their GPUs under %(percent)g %% busy.",
            len(found),
        ) % {"n": len(found), "hours": hours, "percent": settings.OUTREACH_GPU_IDLE_PERCENT}
        return RuleFinding(self, found, summary)


class LowCpu(OutreachRule):
    id = "low-cpu"
    title = _("Cores allocated but idle")
    advice = _(
        "Ask for the cores your program keeps busy: a serial program uses one core whatever it is given. "
        "Check that a parallel program is told how many cores it has (for example $SLURM_CPUS_PER_TASK)."
    )

    def threshold(self) -> str:
        return gettext(
            "CPU jobs of at least %(core_hours)g core-hours whose CPU efficiency was under %(percent)g %%."
        ) % {"core_hours": settings.OUTREACH_CPU_MIN_CORE_HOURS, "percent": settings.OUTREACH_CPU_PERCENT}

    def find(self, jobs: Sequence[ReviewedJob]) -> RuleFinding | None:
        found = [
            job
            for job in jobs
            if not job.gpus  # a GPU job is judged by its GPUs (and charged by them)
            and job.cpu_fraction is not None
            and job.cpu_fraction * 100 < settings.OUTREACH_CPU_PERCENT
            and job.core_hours >= settings.OUTREACH_CPU_MIN_CORE_HOURS
        ]
        if not found:
            return None
        found.sort(key=lambda job: (-job.waste_core_hours, -job.end))
        unused = sum(job.waste_core_hours for job in found)
        summary = ngettext(
            "%(n)d job used under %(percent)g %% of its cores' time: %(unused).1f core-hours went unused.",
            "%(n)d jobs used under %(percent)g %% of their cores' time: %(unused).1f core-hours went unused.",
            len(found),
        ) % {"n": len(found), "percent": settings.OUTREACH_CPU_PERCENT, "unused": unused}
        return RuleFinding(self, found, summary)


class ExcessMemory(OutreachRule):
    id = "excess-memory"
    title = _("Memory requested far above use")
    advice = _(
        "Ask for a little more memory than the job's peak (its page shows it) rather than much more: "
        "memory held idle keeps other jobs, and yours, waiting."
    )

    def threshold(self) -> str:
        return gettext("Jobs asking for at least %(gb)g GB whose memory peak was under %(percent)g %% of it.") % {
            "gb": settings.OUTREACH_MEMORY_MIN_GB,
            "percent": settings.OUTREACH_MEMORY_PERCENT,
        }

    def find(self, jobs: Sequence[ReviewedJob]) -> RuleFinding | None:
        found = [
            job
            for job in jobs
            if job.memory_fraction is not None
            and job.memory_fraction * 100 < settings.OUTREACH_MEMORY_PERCENT
            and job.memory_mb >= settings.OUTREACH_MEMORY_MIN_GB * 1024
            and job.state != "OUT_OF_MEMORY"
        ]
        if not found:
            return None
        found.sort(key=lambda job: (-job.waste_memory_gib_hours, -job.end))
        summary = ngettext(
            "%(n)d job used under %(percent)g %% of the memory it asked for (%(unused).0f GiB-hours unused).",
            "%(n)d jobs used under %(percent)g %% of the memory they asked for (%(unused).0f GiB-hours unused).",
            len(found),
        ) % {
            "n": len(found),
            "percent": settings.OUTREACH_MEMORY_PERCENT,
            "unused": sum(job.waste_memory_gib_hours for job in found),
        }
        return RuleFinding(self, found, summary)


class ShortJobs(OutreachRule):
    id = "short-jobs"
    title = _("Many very short jobs")
    advice = _(
        "Each job costs the scheduler the same, however short. Group short tasks into fewer jobs that "
        "run several minutes each (a loop in one job, or a job array whose tasks each do several)."
    )

    def threshold(self) -> str:
        return gettext("At least %(jobs)s jobs of under %(minutes)g minutes in the period.") % {
            "jobs": settings.OUTREACH_SHORT_JOBS,
            "minutes": settings.OUTREACH_SHORT_MINUTES,
        }

    def find(self, jobs: Sequence[ReviewedJob]) -> RuleFinding | None:
        found = [job for job in jobs if job.elapsed_seconds < settings.OUTREACH_SHORT_MINUTES * 60]
        if len(found) < settings.OUTREACH_SHORT_JOBS:
            return None
        found.sort(key=lambda job: -job.end)
        summary = ngettext(
            "%(n)d of your %(total)d jobs ran under %(minutes)g minutes.",
            "%(n)d of your %(total)d jobs ran under %(minutes)g minutes each.",
            len(found),
        ) % {"n": len(found), "total": len(jobs), "minutes": settings.OUTREACH_SHORT_MINUTES}
        return RuleFinding(self, found, summary)


class TimeOuts(OutreachRule):
    id = "timeouts"
    title = _("Jobs that reach their time limit")
    advice = _(
        "A job stopped at its limit loses the work since its last checkpoint. Ask for more time, "
        "save checkpoints and restart from them, or split the work into shorter jobs."
    )

    def threshold(self) -> str:
        return gettext("At least %(jobs)s jobs stopped at their time limit, and %(percent)g %% of the jobs.") % {
            "jobs": settings.OUTREACH_TIMEOUT_JOBS,
            "percent": settings.OUTREACH_TIMEOUT_PERCENT,
        }

    def find(self, jobs: Sequence[ReviewedJob]) -> RuleFinding | None:
        found = [job for job in jobs if job.state == "TIMEOUT"]
        if not jobs or len(found) < settings.OUTREACH_TIMEOUT_JOBS:
            return None
        if len(found) * 100 < settings.OUTREACH_TIMEOUT_PERCENT * len(jobs):
            return None
        found.sort(key=lambda job: -job.end)
        summary = ngettext(
            "%(n)d of your %(total)d jobs reached its time limit and was stopped.",
            "%(n)d of your %(total)d jobs reached their time limit and were stopped.",
            len(found),
        ) % {"n": len(found), "total": len(jobs)}
        return RuleFinding(self, found, summary)


RULES: dict[str, OutreachRule] = {
    rule.id: rule for rule in (IdleGpus(), LowCpu(), ExcessMemory(), ShortJobs(), TimeOuts())
}


def rules_in_force() -> list[OutreachRule]:
    """The rules OUTREACH_RULES names, in its order."""
    return [RULES[rule_id] for rule_id in settings.OUTREACH_RULES if rule_id in RULES]
