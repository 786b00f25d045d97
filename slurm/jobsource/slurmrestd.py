"""The ``slurmrestd`` job source: ``/slurmdb/<version>/jobs`` with the JWT headers (domain 3)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from django.conf import settings

from slurm.jobsource.frame import (
    JobQuery,
    JobSourceAuthError,
    JobSourceBadResponse,
    JobSourceError,
    JobSourceNotConfigured,
    apply_tres,
    cut_off,
    empty_frame,
    finish_frame,
    format_named_tres,
    sacct_tres,
)


def _number(value: Any) -> Any:
    """v0.0.39+ wraps numbers as ``{set, infinite, number}``; v0.0.38 has plain numbers."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite"):
            return None
        return value.get("number")
    return value


def _seconds(value: Any) -> float:
    """A CPU time ``{seconds, microseconds}`` (or a bare number) in seconds."""
    if isinstance(value, dict) and "seconds" in value:
        return float(_number(value.get("seconds")) or 0) + float(_number(value.get("microseconds")) or 0) / 1e6
    return float(_number(value) or 0)


def _rest_tres(entries: Iterable[Mapping[str, Any]] | None) -> str:
    named: dict[str, int] = {}
    for entry in entries or ():
        count = _number(entry.get("count"))
        if count is None or entry.get("type") == "energy":
            continue
        name = f"{entry['type']}/{entry['name']}" if entry.get("name") else str(entry.get("type", ""))
        named[name] = int(count)
    return format_named_tres(named)


def _rest_state(state: Any) -> str:
    current = state.get("current") if isinstance(state, dict) else state
    if isinstance(current, list):  # v0.0.40+: ["COMPLETED"] or ["CANCELLED", "..."]
        current = current[0] if current else ""
    return str(current or "").split()[0] if current else ""


def rest_job_row(job: Mapping[str, Any], cluster: str) -> dict[str, Any] | None:
    """A slurmdb job object (v0.0.38 and later) as a row of the frame; None for jobs that never ended."""
    times = job.get("time") or {}
    end = _number(times.get("end"))
    if not end:
        return None
    association = job.get("association") or {}
    tres = job.get("tres") or {}
    # Job-level time.total is 0 in v0.0.38: TotalCPU is the sum over the steps.
    total_cpu = sum(_seconds((step.get("time") or {}).get("total")) for step in job.get("steps") or ())
    submit = _number(times.get("submission"))
    return {
        "cluster": job.get("cluster") or association.get("cluster") or cluster,
        "job_id": int(_number(job.get("job_id")) or 0),
        "submit": datetime.fromtimestamp(int(submit or 0), tz=UTC),
        "user": job.get("user") or association.get("user") or "",
        "account": job.get("account") or association.get("account") or "",
        "partition": job.get("partition") or "",
        "state": _rest_state(job.get("state")),
        "end": datetime.fromtimestamp(int(end), tz=UTC),
        "elapsed": int(_number(times.get("elapsed")) or 0),
        "total_cpu": total_cpu,
        "req_tres": _rest_tres(tres.get("requested")),
        "alloc_tres": _rest_tres(tres.get("allocated")),
    }


class SlurmrestdSource:
    """``GET /slurmdb/<version>/jobs`` with ``X-SLURM-USER-NAME``/``X-SLURM-USER-TOKEN``.

    slurmdb's ``/jobs`` has no user filter (an unknown field is a 500), so users are filtered
    here. Times go as ``YYYY-MM-DDTHH:MM:SS`` through ``params=`` (an unencoded ``:`` is a 400).
    A bad or expired token is a 500 as well: mapped to :class:`JobSourceAuthError`.
    """

    name = "slurmrestd"

    def __init__(
        self,
        url: str | None = None,
        *,
        user: str | None = None,
        token: str | None = None,
        jwt_key: str | None = None,
        version: str | None = None,
        timeout: float | None = None,
        verify: bool | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.url = (url if url is not None else settings.BILLING_SLURMRESTD_URL).rstrip("/")
        self.user = user if user is not None else settings.BILLING_SLURMRESTD_USER
        self.token = token if token is not None else settings.BILLING_SLURMRESTD_TOKEN
        self.jwt_key = jwt_key if jwt_key is not None else settings.BILLING_SLURMRESTD_JWT_KEY
        self.version = version or settings.BILLING_SLURMRESTD_VERSION
        self.timeout = timeout if timeout is not None else settings.BILLING_SLURMRESTD_TIMEOUT
        self.verify = verify if verify is not None else settings.BILLING_SLURMRESTD_VERIFY_TLS
        self.session = session or requests.Session()

    def headers(self) -> dict[str, str]:
        if not self.user:
            raise JobSourceNotConfigured("BILLING_SLURMRESTD_USER is not set")
        return {"X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": self._token()}

    def _token(self) -> str:
        if self.token:
            return self.token
        if not self.jwt_key:
            raise JobSourceNotConfigured("neither BILLING_SLURMRESTD_TOKEN nor BILLING_SLURMRESTD_JWT_KEY is set")
        import jwt  # PyJWT: the token `scontrol token` would print, signed with the cluster's HS256 key

        try:
            key = Path(self.jwt_key).read_bytes()
        except OSError as exc:
            raise JobSourceNotConfigured(f"cannot read BILLING_SLURMRESTD_JWT_KEY: {exc}") from exc
        now = int(time.time())
        return jwt.encode({"iat": now, "exp": now + 300, "sun": self.user}, key, algorithm="HS256")

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        if not self.url:
            raise JobSourceNotConfigured("BILLING_SLURMRESTD_URL is not set")
        params = {
            "start_time": query.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "end_time": query.end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "cluster": query.cluster,
        }
        if query.account:
            params["account"] = query.account
        try:
            response = self.session.get(
                f"{self.url}/slurmdb/{self.version}/jobs",
                params=params,
                headers=self.headers(),
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.RequestException as exc:
            raise JobSourceError(f"slurmrestd: {exc}") from exc
        body = self._json(response)
        rows = [row for job in body.get("jobs") or () if (row := rest_job_row(job, query.cluster)) is not None]
        if not rows:
            return empty_frame()
        frame = pd.DataFrame.from_records(rows)
        return finish_frame(apply_tres(cut_off(finish_frame(frame), query), sacct_tres))

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        text = response.text[:2000]
        if response.status_code == 401:
            raise JobSourceAuthError(f"slurmrestd refused the credentials: {text[:300]}")
        try:
            body: dict[str, Any] = dict(response.json())
        except ValueError:
            body = {}
        errors = [e for e in body.get("errors") or () if e.get("error_number") or e.get("error")]
        if any(_is_auth_error(e) for e in errors):
            # slurmdb answers a bad token with error 1007 "Protocol authentication error" (HTTP 200 or 500).
            raise JobSourceAuthError(f"slurmrestd refused the token: {errors}")
        if response.status_code == 500 and "jobs" in body:
            # 22.05 gives up half-way through a dump (e.g. a job that ran under a since-deleted QOS:
            # "_parser_dump: failed on field qos") and answers 500 with a partial list: not an auth error.
            raise JobSourceBadResponse("slurmrestd: HTTP 500 with a partial job list (a record it cannot serialise)")
        if response.status_code == 500 and not re.search(r"Unknown Query field|Unable to parse", text):
            # slurmrestd 22.05 answers a bad, expired or mismatched token with a 500, not a 401.
            raise JobSourceAuthError(f"slurmrestd: HTTP 500 (a bad or expired token?): {text[:300]}")
        if response.status_code >= 400:
            raise JobSourceBadResponse(f"slurmrestd: HTTP {response.status_code}: {text[:300]}")
        if not body:
            raise JobSourceBadResponse(f"slurmrestd: not JSON: {text[:300]}")
        if errors:
            raise JobSourceBadResponse(f"slurmrestd: {errors}")
        return body


def _is_auth_error(error: Mapping[str, Any]) -> bool:
    return error.get("error_number") == 1007 or "authentication" in str(error.get("error", "")).lower()
