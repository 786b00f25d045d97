"""Pure parsers for ``sacct --parsable2`` output (domain.md section 2.1).

Run sacct with ``TZ=UTC`` so its zone-less timestamps are UTC. These functions raise
ValueError on text sacct would not print, since sacct output is machine input to us.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, tzinfo
from typing import NamedTuple

from slurm.decoders import ExitCode

_UNIT_POWER = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
NO_TIME = {"", "Unknown", "None", "N/A"}


def parse_parsable2(text: str, *, delimiter: str = "|", fields: list[str] | None = None) -> list[dict[str, str]]:
    """Rows of ``sacct --parsable2`` output as dicts keyed by field name.

    The first line is the header unless ``fields`` is given (for ``--noheader`` output). A
    trailing delimiter (``--parsable``) is tolerated. Step lines come back as rows too.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if fields is None:
        if not lines:
            return []
        fields = _split(lines[0], delimiter, None)
        lines = lines[1:]
    return [dict(zip(fields, _split(line, delimiter, len(fields)), strict=True)) for line in lines]


def _split(line: str, delimiter: str, width: int | None) -> list[str]:
    parts = line.split(delimiter)
    if parts and parts[-1] == "" and (width is None or len(parts) == width + 1):
        parts = parts[:-1]  # --parsable ends every line with the delimiter
    if width is not None and len(parts) != width:
        raise ValueError(f"Expected {width} fields, got {len(parts)}: {line!r}")
    return parts


def _clock(text: str) -> float:
    """``[D-][HH:]MM:SS[.fff]`` to seconds."""
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
    parts = text.split(":")
    if not 2 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+(\.\d+)?", part) for part in parts):
        raise ValueError(f"Not a sacct duration: {text!r}")
    if len(parts) == 2:
        hours, minutes, seconds = 0.0, float(parts[0]), float(parts[1])
    else:
        hours, minutes, seconds = float(parts[0]), float(parts[1]), float(parts[2])
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def parse_elapsed(text: str) -> int:
    """``Elapsed``: ``[D-]HH:MM:SS`` to whole seconds (``00:00:04`` is 4)."""
    text = text.strip()
    if "." in text:
        raise ValueError(f"Elapsed has no fractions: {text!r}")
    return int(_clock(text))


def parse_total_cpu(text: str) -> float:
    """``TotalCPU`` (also UserCPU, SystemCPU) in any of its four forms, to seconds.

    ``D-HH:MM:SS`` from a day, ``HH:MM:SS`` from an hour, ``MM:SS.mmm`` below an hour with a
    sub-second part (``00:03.989``), else ``00:MM:SS``. A ``.`` marks the two-field form.
    """
    return _clock(text.strip())


def parse_size(text: str, *, base: str = "") -> float:
    """A number with an optional K/M/G/T/P suffix (powers of 1024) in units of ``base``.

    ``parse_size("500M", base="M")`` is 500; ``parse_size("2G", base="M")`` is 2048;
    ``parse_size("214360K")`` (MaxRSS) is 219504640 bytes.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([KMGTPE]?)\s*", text)
    if not match:
        raise ValueError(f"Not a sacct size: {text!r}")
    number, unit = float(match.group(1)), match.group(2)
    return number * 1024 ** (_UNIT_POWER[unit] - _UNIT_POWER[base])


def parse_tres_text(text: str) -> dict[str, int]:
    """``billing=2,cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M,node=1`` to a dict.

    Memory (``mem``, ``vmem``) comes back in MB, rounded up; other suffixed values (``fs/disk``)
    in their base unit. Entries are sorted as strings by sacct, so never rely on their order.
    """
    result: dict[str, int] = {}
    if not text.strip():
        return result
    for pair in text.split(","):
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"Not a TRES entry: {pair!r}")
        base = "M" if name in ("mem", "vmem") else ""
        result[name] = math.ceil(parse_size(value, base=base))
    return result


class SacctState(NamedTuple):
    name: str
    by_uid: int | None  # "CANCELLED by 1001": the uid that cancelled the job


def parse_state(text: str) -> SacctState:
    """``CANCELLED by 0`` to ``("CANCELLED", 0)``; ``CANCELLED+`` (truncated) to ``("CANCELLED", None)``."""
    words = text.strip().split()
    if not words:
        raise ValueError("Empty sacct state")
    name = words[0].rstrip("+")
    by_uid = int(words[2]) if len(words) == 3 and words[1] == "by" and words[2].isdigit() else None
    return SacctState(name, by_uid)


def parse_exit_code(text: str) -> ExitCode:
    """``ExitCode``/``DerivedExitCode`` ``code:signal`` to an ExitCode."""
    code, sep, signal = text.strip().partition(":")
    if not sep or not code.isdigit() or not signal.isdigit():
        raise ValueError(f"Not a sacct exit code: {text!r}")
    return ExitCode(int(code), int(signal))


def parse_timestamp(text: str, *, tz: tzinfo = UTC) -> datetime | None:
    """``2026-11-22T07:10:48`` (zone-less, in ``tz``: run sacct with TZ=UTC) to an aware datetime."""
    text = text.strip()
    if text in NO_TIME:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz)


class SacctJobId(NamedTuple):
    job: str  # "1234", "1234_7", "1240+1"
    step: str | None  # "batch", "extern", "0", or None on a job line


def split_job_id(text: str) -> SacctJobId:
    """``1.batch`` to ``("1", "batch")``; ``1234_7`` to ``("1234_7", None)``."""
    job, sep, step = text.strip().partition(".")
    return SacctJobId(job, step if sep else None)
