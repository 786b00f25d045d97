"""The ``sacct`` job source: ``sacct --parsable2`` through :mod:`slurm.commands` (domain 2.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC

import pandas as pd
from django.conf import settings

from slurm.commands import SlurmCommandError, run_command
from slurm.jobsource.frame import (
    JobQuery,
    JobSourceBadResponse,
    JobSourceError,
    JobSourceNotConfigured,
    apply_tres,
    cut_off,
    empty_frame,
    finish_frame,
    sacct_tres,
)
from slurm.sacct import parse_elapsed, parse_parsable2, parse_state, parse_timestamp, parse_total_cpu

SACCT_FIELDS = [
    "JobIDRaw",
    "JobID",
    "Cluster",
    "User",
    "Account",
    "Partition",
    "Submit",
    "End",
    "ElapsedRaw",
    "TotalCPU",
    "ReqTRES",
    "AllocTRES",
    "State",
]


def sacct_frame(rows: Sequence[Mapping[str, str]], cluster: str) -> pd.DataFrame:
    """sacct (or CSV) rows, job lines only (their TotalCPU already sums the steps), as a raw frame."""
    records = []
    for row in rows:
        job_id = row.get("JobIDRaw") or row.get("JobID") or ""
        if "." in job_id or "." in (row.get("JobID") or ""):
            continue  # a step line
        end = parse_timestamp(row.get("End", ""))
        if end is None:
            continue
        elapsed_raw = row.get("ElapsedRaw")
        records.append(
            {
                "cluster": row.get("Cluster") or cluster,
                "job_id": int(job_id.split("_")[0].split("+")[0]),
                "submit": parse_timestamp(row.get("Submit", "")),
                "user": row.get("User", ""),
                "account": row.get("Account", ""),
                "partition": row.get("Partition", ""),
                "state": parse_state(row.get("State") or "UNKNOWN").name,
                "end": end,
                "elapsed": int(elapsed_raw) if elapsed_raw else parse_elapsed(row.get("Elapsed") or "00:00:00"),
                "total_cpu": parse_total_cpu(row.get("TotalCPU") or "00:00:00"),
                "req_tres": row.get("ReqTRES", ""),
                "alloc_tres": row.get("AllocTRES", ""),
            }
        )
    if not records:
        return empty_frame()
    return finish_frame(pd.DataFrame.from_records(records))


class SacctSource:
    """``sacct --parsable2`` (job and step lines; ``-X`` would zero TotalCPU) run as an argv list."""

    name = "sacct"

    def __init__(self, binary: str | None = None, *, timeout: float | None = None) -> None:
        self.binary = binary if binary is not None else settings.BILLING_SACCT
        self.timeout = timeout if timeout is not None else settings.BILLING_SACCT_TIMEOUT

    def argv(self, query: JobQuery) -> list[str]:
        argv = [
            self.binary,
            "--parsable2",
            "--noheader",
            "--duplicates",  # every record of a requeued job: each is billed on its own
            f"--clusters={query.cluster}",
            f"--starttime={query.start.astimezone(UTC):%Y-%m-%dT%H:%M:%S}",
            f"--endtime={query.end.astimezone(UTC):%Y-%m-%dT%H:%M:%S}",
            f"--format={','.join(SACCT_FIELDS)}",
        ]
        argv.append(f"--user={query.user}" if query.user else "--allusers")
        if query.account:
            argv.append(f"--accounts={query.account}")
        return argv

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        if not self.binary:
            raise JobSourceNotConfigured("BILLING_SACCT is empty")
        try:
            result = run_command(self.argv(query), timeout=self.timeout)
        except SlurmCommandError as exc:
            if exc.not_found:
                raise JobSourceNotConfigured(f"sacct not found: {self.binary}") from exc
            raise JobSourceError(str(exc)) from exc
        try:
            rows = parse_parsable2(result.stdout, fields=SACCT_FIELDS)
            frame = sacct_frame(rows, query.cluster)
        except ValueError as exc:
            raise JobSourceBadResponse(f"sacct printed something unreadable: {exc}") from exc
        return finish_frame(apply_tres(cut_off(frame, query), sacct_tres))
