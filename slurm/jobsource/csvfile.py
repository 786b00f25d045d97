"""The ``csv`` job source: a file with sacct's column names, the seed's last resort.

Columns ``User,JobID,Elapsed,TotalCPU,ReqTRES,End,State`` and optionally
``Account,Cluster,Partition,Submit,AllocTRES``.
"""

from __future__ import annotations

import pandas as pd
from django.conf import settings

from slurm.jobsource.frame import (
    JobQuery,
    JobSourceBadResponse,
    JobSourceError,
    JobSourceNotConfigured,
    apply_tres,
    cut_off,
    finish_frame,
    sacct_tres,
)
from slurm.jobsource.sacct import sacct_frame


class CsvSource:
    """A CSV file with sacct's column names (the seed's ``test.csv`` fallback)."""

    name = "csv"

    def __init__(self, path: str | None = None) -> None:
        self.path = path if path is not None else settings.BILLING_CSV_FILE

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        if not self.path:
            raise JobSourceNotConfigured("BILLING_CSV_FILE is not set")
        try:
            raw = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError) as exc:
            raise JobSourceError(f"cannot read {self.path}: {exc}") from exc
        try:
            frame = sacct_frame(raw.to_dict("records"), query.cluster)
        except (ValueError, KeyError) as exc:
            raise JobSourceBadResponse(f"{self.path}: {exc}") from exc
        frame = frame[frame["cluster"] == query.cluster]
        return finish_frame(apply_tres(cut_off(frame, query), sacct_tres))
