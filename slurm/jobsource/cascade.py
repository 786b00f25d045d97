"""The backends tried in the configured order (``settings.BILLING_SOURCES``): the first that answers wins."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from django.conf import settings

from slurm.jobsource.csvfile import CsvSource
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.frame import JobQuery, JobSource, JobSourceError, JobSourceNotConfigured
from slurm.jobsource.sacct import SacctSource
from slurm.jobsource.slurmrestd import SlurmrestdSource

logger = logging.getLogger(__name__)


@dataclass
class FetchResult:
    frame: pd.DataFrame
    source: str
    failures: dict[str, str] = field(default_factory=dict)  # backend -> why it was skipped


BACKENDS: dict[str, Callable[[], JobSource]] = {
    "database": DatabaseSource,
    "slurmrestd": SlurmrestdSource,
    "sacct": SacctSource,
    "csv": CsvSource,
}


def configured_sources(order: Sequence[str] | None = None) -> list[JobSource]:
    names = list(order if order is not None else settings.BILLING_SOURCES)
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise ValueError(f"Unknown job sources {unknown}; known: {', '.join(BACKENDS)}.")
    return [BACKENDS[name]() for name in names]


def fetch_jobs(query: JobQuery, sources: Sequence[JobSource] | None = None) -> FetchResult:
    """The first backend that answers, in order; JobSourceError when none does.

    An empty answer is an answer (a user with no jobs), so only errors move to the next backend.
    """
    failures: dict[str, str] = {}
    last: JobSourceError | None = None
    for source in sources if sources is not None else configured_sources():
        try:
            frame = source.fetch(query)
        except JobSourceNotConfigured as exc:
            failures[source.name] = str(exc)
            continue
        except JobSourceError as exc:
            logger.warning("job source %s failed: %s", source.name, exc)
            failures[source.name] = str(exc)
            last = exc
            continue
        return FetchResult(frame, source.name, failures)
    raise last or JobSourceError("no job source is configured: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
