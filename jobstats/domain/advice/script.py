"""Built-in rules on the job script's lines: sleeping, conda, and how GROMACS, Amber and LAMMPS are started."""

from __future__ import annotations

import re

from django.utils.translation import gettext_lazy as _

from jobstats.domain.advice.facts import AdviceRule, JobFacts, Severity

_LAUNCHER = r"(?:srun|mpirun|mpiexec)"
_GMX = r"(?:gmx|gmx_mpi|gmx_d|gmx_d_mpi)\s+mdrun|mdrun_mpi(?:_d)?"


def _nt_mismatch(match: re.Match[str], facts: JobFacts) -> bool:
    return int(match.group(1)) != facts.cores


RULES: tuple[AdviceRule, ...] = (
    AdviceRule(
        "sleep",
        Severity.CRITICAL,
        _(
            "Line {line} of the script sleeps: the allocated resources sit idle meanwhile. Use job dependencies instead."
        ),
        "idle-waiting",
        line=re.compile(r"(?:^|[;&|]\s*)sleep\s+\d"),
    ),
    AdviceRule(
        "conda",
        Severity.CRITICAL,
        _(
            "Line {line} activates a conda environment. Conda installs conflict with the cluster's software: use a Python virtualenv."
        ),
        "python",
        line=re.compile(r"\b(?:conda|mamba)\s+activate\b|\bsource\s+activate\b"),
    ),
    AdviceRule(
        "gromacs-no-launcher",
        Severity.WARNING,
        _("Line {line} starts GROMACS' mdrun on {cores} cores without srun: start it with srun."),
        "gromacs",
        lambda f: "gromacs" in f.modules and f.cores > 1,
        line=re.compile(rf"^(?!.*\b{_LAUNCHER}\b).*\b(?:{_GMX})\b"),
    ),
    AdviceRule(
        "gromacs-thread-mismatch",
        Severity.CRITICAL,
        _("Line {line} runs mdrun with -nt different from the {cores} allocated cores."),
        "gromacs",
        lambda f: "gromacs" in f.modules,
        line=re.compile(rf"\b(?:{_GMX})\b.*\s-nt\s+(\d+)"),
        line_check=_nt_mismatch,
    ),
    AdviceRule(
        "gromacs-multinode-non-mpi",
        Severity.CRITICAL,
        _("Line {line} runs the non-MPI GROMACS binary on {nodes} nodes: use gmx_mpi."),
        "gromacs",
        lambda f: "gromacs" in f.modules and f.nodes > 1,
        line=re.compile(r"\b(?:gmx|gmx_d)\s+mdrun\b"),
    ),
    AdviceRule(
        "gromacs-grompp",
        Severity.WARNING,
        _("Line {line} runs grompp: preprocessing is quick and belongs on a login node, not in a job."),
        "gromacs",
        lambda f: "gromacs" in f.modules,
        line=re.compile(r"\bgrompp\b"),
    ),
    AdviceRule(
        "amber-cpu-on-gpu",
        Severity.CRITICAL,
        _("Line {line} runs Amber's CPU binary (pmemd.MPI) in a GPU job: use pmemd.cuda."),
        "amber",
        lambda f: "amber" in f.modules and f.gpus > 0,
        line=re.compile(r"\bpmemd\.MPI\b"),
    ),
    AdviceRule(
        "amber-gpu-on-cpu",
        Severity.CRITICAL,
        _("Line {line} runs Amber's GPU binary (pmemd.cuda) in a job without GPUs."),
        "amber",
        lambda f: "amber" in f.modules and f.gpus == 0,
        line=re.compile(r"\bpmemd\.cuda"),
    ),
    AdviceRule(
        "amber-multinode-no-srun",
        Severity.CRITICAL,
        _("Line {line} runs pmemd on {nodes} nodes without srun: start it with srun."),
        "amber",
        lambda f: "amber" in f.modules and f.nodes > 1,
        line=re.compile(rf"^(?!.*\b{_LAUNCHER}\b).*\bpmemd\b"),
    ),
    AdviceRule(
        "lammps-no-srun",
        Severity.CRITICAL,
        _("Line {line} runs LAMMPS on {cores} cores without srun: start it with srun."),
        "lammps",
        lambda f: bool({"lammps", "lammps-omp"} & f.modules) and f.cores > 1,
        line=re.compile(rf"^(?!.*\b{_LAUNCHER}\b).*\blmp\w*\b"),
    ),
)
