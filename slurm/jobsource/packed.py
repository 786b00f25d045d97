"""The database source's packed reads as column arrays: parsed without a Python object per row.

A packed read (:mod:`slurm.jobsource.expressions`) returns a chunk's integers as one string and
its texts as one string per text group. They are parsed here into :class:`JobColumns`: an
integer matrix, and per text group a code per row into the group's distinct values, so each
distinct TRES text is parsed once. :func:`build_frame` makes the typed, sorted frame from them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from slurm.decoders import TresCatalog, decode_state, parse_tres
from slurm.jobsource.expressions import INT_FIELDS, ROW_SEPARATOR, TEXT_GROUPS, TEXT_SEPARATOR, VALUE_SEPARATOR
from slurm.jobsource.frame import COLUMNS, TresSummary, summarize_named_tres, tres_arrays, utc_seconds


@dataclass
class JobColumns:
    """The selected jobs as arrays: their integers, and a code per row into their distinct texts."""

    ints: np.ndarray  # (rows, len(INT_FIELDS)) int64
    codes: list[np.ndarray]  # per text group: (rows,) index into its texts
    texts: list[np.ndarray]  # per text group: its distinct values, (distinct, len(group)) strings

    def __len__(self) -> int:
        return len(self.ints)

    @classmethod
    def empty(cls) -> JobColumns:
        return cls(
            np.zeros((0, len(INT_FIELDS)), dtype="int64"),
            [np.zeros(0, dtype="intp") for _ in TEXT_GROUPS],
            [np.zeros((0, len(group)), dtype=object) for group in TEXT_GROUPS],
        )


class TextIndex:
    """One code per distinct text of a group across the chunks of a fetch, given as the chunks arrive."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._codes: dict[tuple[str, ...], int] = {}

    def recode(self, codes: np.ndarray, texts: np.ndarray) -> np.ndarray:
        """A chunk's codes in this index (a chunk has at most thousands of distinct texts)."""
        index = self._codes
        keys = (tuple(values) for values in texts.tolist())
        local = np.fromiter((index.setdefault(key, len(index)) for key in keys), dtype="intp", count=len(texts))
        return local[codes]

    def texts(self) -> np.ndarray:
        return text_table(list(self._codes), self.width)  # in code order (dicts keep insertion order)


def text_table(rows: Sequence[Sequence[str]], width: int) -> np.ndarray:
    """Rows of ``width`` strings as a (rows, width) object array."""
    table = np.empty((len(rows), width), dtype=object)
    for i, values in enumerate(rows):
        table[i] = values
    return table


#: Steps as arrays (job_db_inx, seconds, microseconds): one row per step or per job, summed per job in _build.
StepArrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def no_steps() -> StepArrays:
    return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")


def concat_steps(parts: Sequence[StepArrays]) -> StepArrays:
    if not parts:
        return no_steps()
    inx, sec, usec = zip(*parts, strict=True)
    return np.concatenate(inx), np.concatenate(sec), np.concatenate(usec)


@dataclass
class Packed:
    """What one packed read returned, still text; parsed in the calling thread."""

    rows: int
    ints: str | None
    texts: list[str | None]  # per text group
    cut: bool
    step_rows: int = 0
    steps: str | None = None


def as_text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def parse_ints(text: str | None, rows: int, width: int) -> np.ndarray | None:
    """``rows`` × ``width`` integers written with VALUE_SEPARATOR; None unless exactly that many."""
    if rows == 0:
        return np.zeros((0, width), dtype="int64")
    if not text:
        return None
    values = np.fromstring(text, dtype="int64", sep=VALUE_SEPARATOR)  # C parsing; stops at a bad value
    if values.size != rows * width:
        return None
    return values.reshape(rows, width)


def parse_texts(text: str | None, rows: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes and distinct texts of ``rows`` texts of ``width`` joined values; None if one holds a separator."""
    if rows == 0:
        return np.zeros(0, dtype="intp"), text_table([], width)
    if text is None:
        return None
    lines = text.split(ROW_SEPARATOR)
    if len(lines) != rows:
        return None
    codes, uniques = pd.factorize(np.array(lines, dtype=object))
    values = [str(line).split(TEXT_SEPARATOR) for line in uniques]
    if any(len(v) != width for v in values):  # a value holding a tab
        return None
    return codes, text_table(values, width)


def parse_packed(packed: Packed) -> tuple[JobColumns, StepArrays] | None:
    if packed.cut:
        return None
    ints = parse_ints(packed.ints, packed.rows, len(INT_FIELDS))
    steps = parse_ints(packed.steps, packed.step_rows, 3)
    if ints is None or steps is None:
        return None
    codes, texts = [], []
    for text, group in zip(packed.texts, TEXT_GROUPS, strict=True):
        parsed = parse_texts(text, packed.rows, len(group))
        if parsed is None:
            return None
        codes.append(parsed[0])
        texts.append(parsed[1])
    return JobColumns(ints, codes, texts), (steps[:, 0], steps[:, 1], steps[:, 2])


def id_ranges(low: int, high: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size - 1, high)) for start in range(low, high + 1, size)]


def strings(values: np.ndarray, codes: np.ndarray) -> Any:
    """``values[codes]`` as the frame's string column: the few values converted once, then one take."""
    return pd.Series(values, dtype=object).astype(str).array.take(codes)


def cpu_seconds(job_inx: np.ndarray, steps: StepArrays) -> np.ndarray:
    """Per job, its steps' seconds plus microseconds / 1e6 (sums of integers: exact, whatever the order)."""
    step_inx, sec, usec = steps
    if not len(step_inx) or not len(job_inx):
        return np.zeros(len(job_inx))
    by_inx = np.argsort(job_inx, kind="stable")
    ordered = job_inx[by_inx]
    at = np.minimum(np.searchsorted(ordered, step_inx), len(ordered) - 1)
    hit = ordered[at] == step_inx  # steps of unselected jobs inside an id range are dropped
    rows = by_inx[at[hit]]
    seconds = np.bincount(rows, weights=sec[hit].astype("float64"), minlength=len(job_inx))
    micros = np.bincount(rows, weights=usec[hit].astype("float64"), minlength=len(job_inx))
    return seconds + micros / 1e6


def build_frame(
    columns: JobColumns, steps: StepArrays, users: Mapping[int, str], catalog: TresCatalog, cluster: str
) -> pd.DataFrame:
    """The typed, sorted frame straight from column arrays (what finish_frame makes, without its passes)."""
    inx, id_job, submit, assoc, state, time_end, run_seconds = (
        np.ascontiguousarray(columns.ints[:, k]) for k in range(len(INT_FIELDS))
    )
    order = np.lexsort((id_job, time_end))  # rows sorted by end time then job id, as finish_frame sorts
    state_codes, states = pd.factorize(state[order])
    state_names = [decode_state(int(s)).name for s in states]
    assoc_codes, assocs = pd.factorize(assoc[order])
    user_names = [users.get(int(a), "") or "" for a in assocs]
    names, tres = (codes[order] for codes in columns.codes)
    account, partition = columns.texts[0].T
    req_text, alloc_text = columns.texts[1].T

    @functools.cache
    def parse(text: str) -> TresSummary:  # each distinct TRES text once
        return summarize_named_tres(catalog.named(parse_tres(text)))

    # Per distinct text (thousands), then one take per column: no per-row Python object.
    req = tres_arrays(np.arange(len(req_text)), req_text, parse, "req")
    alloc = tres_arrays(np.arange(len(alloc_text)), alloc_text, parse, "alloc")
    alloc_gpu_type, req_gpu_type = alloc.pop("alloc_gpu_type"), req.pop("req_gpu_type")
    gpu_type = np.where(alloc_gpu_type != "", alloc_gpu_type, req_gpu_type)  # a job that never ran: its request
    per_text = {
        "account": strings(account, names),
        "partition": strings(partition, names),
        "gpu_type": strings(gpu_type, tres),
        **{
            name: strings(values, tres) if values.dtype == object else values[tres]
            for name, values in (req | alloc).items()
        },
    }
    return pd.DataFrame(
        {
            "cluster": strings(np.array([cluster], dtype=object), np.zeros(len(order), dtype="intp")),
            "job_id": id_job[order],
            "submit": utc_seconds(submit[order]),
            "user": strings(np.array(user_names, dtype=object), assoc_codes),
            "state": strings(np.array(state_names, dtype=object), state_codes),
            "end": utc_seconds(time_end[order]),
            "elapsed": np.maximum(run_seconds[order], 0),
            "total_cpu": cpu_seconds(inx, steps)[order],
            **per_text,
        },
        columns=list(COLUMNS),
    )
