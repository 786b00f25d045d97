"""Slurm hostlist expressions (domain 1.9): ``nc[001-003],ng7`` to node names and back.

Pure and tolerant, like :mod:`slurm.decoders`: a malformed group is kept as written rather than
raising, because one odd row must not turn a job page into a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import groupby, product

NO_NODES = {"", "None assigned", "(null)", "None"}
_MAX_HOSTS = 1_000_000  # a typo like node[1-999999999] must not eat the server's memory


def _split_top_level(expr: str) -> list[str]:
    """Split on commas outside brackets: ``a[1,3],b2`` to ``["a[1,3]", "b2"]``."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in expr:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _expand_range_list(inner: str) -> list[str]:
    """``001-003,7`` to ``["001", "002", "003", "7"]``; zero padding follows the range start."""
    values: list[str] = []
    for item in inner.split(","):
        lo, sep, hi = item.strip().partition("-")
        if not sep:
            if not lo.isdigit():
                raise ValueError(item)
            values.append(lo)
            continue
        if not (lo.isdigit() and hi.isdigit()) or int(hi) < int(lo) or int(hi) - int(lo) > _MAX_HOSTS:
            raise ValueError(item)
        width = len(lo)
        values.extend(str(n).zfill(width) for n in range(int(lo), int(hi) + 1))
    return values


def _expand_group(group: str) -> list[str]:
    """Expand one prefix group; several bracket sets give their product, as Slurm does."""
    pieces = re.split(r"(\[[^\[\]]*\])", group)
    choices: list[list[str]] = []
    for piece in pieces:
        if piece.startswith("[") and piece.endswith("]"):
            choices.append(_expand_range_list(piece[1:-1]))
        elif "[" in piece or "]" in piece:
            raise ValueError(group)
        elif piece:
            choices.append([piece])
    return ["".join(combo) for combo in product(*choices)]


def expand_hostlist(expr: str | None) -> list[str]:
    """Expand a Slurm hostlist expression into node names, in order.

    Handles several prefix groups (``nc[1-2],ng[3-4]``), commas inside brackets, singles,
    zero padding (``node[001-010]``) and ``None assigned``. A malformed group is kept as
    written rather than raising: one bad row must not break a page.
    """
    if expr is None or expr.strip() in NO_NODES:
        return []
    hosts: list[str] = []
    for group in _split_top_level(expr.strip()):
        try:
            hosts.extend(_expand_group(group))
        except ValueError:
            hosts.append(group)
    return hosts


def hostlist_size(expr: str | None) -> int:
    """``len(expand_hostlist(expr))``, without expanding a single node's name (most jobs' node list)."""
    if expr is not None and "[" not in expr and "," not in expr:
        return 0 if expr.strip() in NO_NODES else 1
    return len(expand_hostlist(expr))


def format_ranges(numbers: Iterable[int], width: int = 0) -> str:
    """``[1, 2, 3, 7]`` to ``1-3,7`` (``node_inx`` syntax; the inside of a hostlist bracket)."""
    parts: list[str] = []
    ordered = sorted(set(numbers))
    for _key, run in groupby(enumerate(ordered), key=lambda pair: pair[1] - pair[0]):
        block = [n for _i, n in run]
        lo, hi = str(block[0]).zfill(width), str(block[-1]).zfill(width)
        parts.append(lo if block[0] == block[-1] else f"{lo}-{hi}")
    return ",".join(parts)


_HOST_RE = re.compile(r"^(.*?)(\d+)$")


def compress_hostlist(hosts: Iterable[str]) -> str:
    """Compress node names into a hostlist expression: the inverse of expand_hostlist.

    Names group by prefix; numbers keep their zero padding (``n01``, ``n02`` give ``n[01-02]``).
    Duplicates are dropped and numbers sorted within a group; groups keep first-seen order.
    """
    groups: dict[tuple[str, int], set[int]] = {}
    literal: dict[str, None] = {}
    order: list[tuple[str, int] | str] = []
    for host in hosts:
        match = _HOST_RE.match(host)
        if not match:
            if host not in literal:
                literal[host] = None
                order.append(host)
            continue
        prefix, digits = match.groups()
        # Padded numbers ("007") keep their width; unpadded ones share width 0 so 9 and 10 join.
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
        key = (prefix, width)
        if key not in groups:
            groups[key] = set()
            order.append(key)
        groups[key].add(int(digits))
    parts: list[str] = []
    for entry in order:
        if isinstance(entry, str):
            parts.append(entry)
            continue
        prefix, width = entry
        numbers = groups[entry]
        if len(numbers) == 1:
            parts.append(f"{prefix}{str(next(iter(numbers))).zfill(width)}")
        else:
            parts.append(f"{prefix}[{format_ranges(numbers, width)}]")
    return ",".join(parts)
