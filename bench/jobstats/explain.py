"""The Slurm statements of each benchmark case, their plans and the rows they really read (run.py --explain).

A request is made twice through Django's test client against the configured Slurm database:
with the cache emptied (every statement the case can run, the cached counts and uid lookup
included) and again warm (what a request runs while its counts are cached). Each statement
is then run again on the portal's connection (the SELECT-only account), between two reads of the
session's Handler_read_* counters: their difference is the number of index entries and rows
the storage engine read for it ("rows examined"), a figure that does not depend on the load
of the machine, unlike a timing. EXPLAIN gives the index used and whether a sort is needed.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

HANDLER_READS = (
    "Handler_read_first", "Handler_read_key", "Handler_read_last", "Handler_read_next", "Handler_read_prev",
    "Handler_read_rnd", "Handler_read_rnd_deleted", "Handler_read_rnd_next",
)  # fmt: skip


def _reads(cursor: Any) -> int:
    cursor.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
    return sum(int(value) for name, value in cursor.fetchall() if name in HANDLER_READS)


def _engine_stats(node: Any) -> dict[str, int]:
    """The sums of every ``r_engine_stats`` of an ANALYZE FORMAT=JSON tree."""
    totals: dict[str, int] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "r_engine_stats":
                for name, count in value.items():
                    if isinstance(count, int | float):
                        totals[name] = totals.get(name, 0) + int(count)
            else:
                for name, count in _engine_stats(value).items():
                    totals[name] = totals.get(name, 0) + count
    elif isinstance(node, list):
        for item in node:
            for name, count in _engine_stats(item).items():
                totals[name] = totals.get(name, 0) + count
    return totals


def examine(cursor: Any, sql: str) -> dict[str, Any]:
    """EXPLAIN of ``sql`` and the rows it reads when run (the counters' own reads subtracted)."""
    cursor.execute(f"EXPLAIN {sql}")
    names = [column[0] for column in cursor.description]
    plan = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    before = _reads(cursor)
    idle = _reads(cursor) - before  # what reading the counters costs
    before = _reads(cursor)
    cursor.execute(sql)
    rows = len(cursor.fetchall())
    examined = _reads(cursor) - before - idle
    cursor.execute(f"ANALYZE FORMAT=JSON {sql}")
    stats = _engine_stats(json.loads(cursor.fetchone()[0]))
    return {
        "examined": examined,
        "returned": rows,
        "pages": stats.get("pages_accessed", 0),  # InnoDB pages the statement touched (MariaDB >= 10.9)
        "pages_read": stats.get("pages_read_count", 0),  # of which read from disk: the buffer pool's state
        "plan": [
            {key: row.get(key) for key in ("select_type", "table", "type", "key", "rows", "Extra")} for row in plan
        ],
    }


def _outer(sql: str) -> str:
    """``sql`` without its parenthesised parts (subqueries, conditions): the outer statement's skeleton."""
    text, previous = sql, None
    while text != previous:
        previous, text = text, re.sub(r"\([^()]*\)", "", text)
    return text


def kind(sql: str) -> str:
    """A short name for a statement: a count, or the table its outer SELECT reads."""
    outer = _outer(sql).upper()
    if outer.startswith("SELECT COUNT"):
        return "count"
    found = re.search(r"\bFROM `([A-Z_]+)`", outer)
    table = found.group(1).lower().removeprefix("bench_") if found else "?"
    if table == "job_table" and "`ID_USER` FROM" in outer and "JOB_NAME" not in outer:
        return "uid lookup"
    return f"rows of {table}"


def run(cases: list[tuple[str, str, str]], database: str, size: str) -> dict[str, Any]:
    """Every case ``(name, username, URL)``: its statements cold and warm, each examined on ``database``.

    ``database`` is the portal's Slurm database (named for the record); the statements run again
    on the portal's own connection to it, as the SELECT-only account.
    """
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from slurm.visibility import forget_uids

    cursor = connections["slurm"].cursor()  # the portal's own SELECT-only session on the Slurm database
    found: dict[str, Any] = {"database": database, "size": size, "cases": []}
    for name, username, url in cases:
        client = Client()
        cache.clear()
        forget_uids()  # uid_of()'s memo in this process: a cold request looks the uid up
        client.force_login(get_user_model().objects.get(username=username))
        statements: dict[str, list[str]] = {}
        elapsed: dict[str, float] = {}
        for when in ("cold", "warm"):
            with CaptureQueriesContext(connections["slurm"]) as captured:
                started = time.perf_counter()
                response = client.get(url)
                elapsed[when] = (time.perf_counter() - started) * 1000
            if response.status_code != (400 if "floor" in name else 200):
                raise SystemExit(f"{url}: HTTP {response.status_code}")
            statements[when] = [query["sql"] for query in captured.captured_queries]
        warm = list(statements["warm"])
        rows = []
        for sql in statements["cold"]:
            cached = sql not in warm
            if not cached:
                warm.remove(sql)
            entry = {"kind": kind(sql), "cached": cached, "sql": sql}
            rows.append(entry | (examine(cursor, sql) if sql.lstrip().upper().startswith("SELECT") else {}))
        rows += [
            {"kind": kind(sql), "cached": False, "warm_only": True, "sql": sql} | examine(cursor, sql) for sql in warm
        ]
        found["cases"].append(
            {"case": name, "user": username, "url": url, "statements": rows, "ms": elapsed, "load": os.getloadavg()}
        )
    cursor.close()
    return found


def _plan_text(statement: dict[str, Any]) -> str:
    """The plan in a few words: each table's access (index or full scan) and a sort if any."""
    parts = []
    for row in statement.get("plan", []):
        if row["table"] is None:
            continue
        access = row["key"] or ("FULL SCAN" if row["type"] == "ALL" else row["type"])
        sort = " +filesort" if "filesort" in (row["Extra"] or "") else ""
        parts.append(f"{str(row['table']).replace('bench_', '')}: {access}{sort}")
    return "; ".join(parts)


def table(found: dict[str, Any]) -> str:
    """One database's statements per case (markdown)."""
    lines = [
        f"Slurm statements per case on {found['database']} ({found['size']}); rows examined = Handler_read_* "
        "counters around the statement; cached = run only when its cache entry is absent or stale.",
        "",
        "| case | # | statement | cached | plan | rows examined | rows returned | page accesses (pages read from disk) |",
        "|---|---:|---|---|---|---:|---:|---:|",
    ]
    for case in found["cases"]:
        for number, statement in enumerate(case["statements"], 1):
            lines.append(
                f"| {case['case']} | {number} | {kind(statement['sql'])} | {'yes' if statement['cached'] else ''} | "
                f"{_plan_text(statement)} | {statement.get('examined', '')} | {statement.get('returned', '')} | "
                f"{statement.get('pages', '')} ({statement.get('pages_read', '')}) |"
            )
    return "\n".join(lines) + "\n"


def compare(small: dict[str, Any], big: dict[str, Any]) -> str:
    """Rows examined by each statement of each case on two databases, side by side (markdown)."""
    lines = [
        f"Rows examined per statement (Handler_read_*), {small['database']} ({small['size']}) against "
        f"{big['database']} ({big['size']}); cached = run only when its cache entry is absent or stale; "
        "page accesses = InnoDB page accesses (r_engine_stats.pages_accessed of ANALYZE FORMAT=JSON).",
        "",
        "| case | # | statement | cached | plan (same at both sizes unless shown) | rows examined, small | "
        "rows examined, big | big / small | page accesses, small / big |",
        "|---|---:|---|---|---|---:|---:|---:|---:|",
    ]
    big_cases = {case["case"]: case for case in big["cases"]}
    for case in small["cases"]:
        other = big_cases.get(case["case"], {"statements": []})["statements"]
        for number, statement in enumerate(case["statements"], 1):
            twin = other[number - 1] if number <= len(other) else {}
            plan = _plan_text(statement)
            if twin and _plan_text(twin) != plan:
                plan = f"{plan} / big: {_plan_text(twin)}"
            small_rows, big_rows = statement.get("examined"), twin.get("examined")
            ratio = f"{big_rows / small_rows:.2f}" if small_rows and big_rows is not None else ""
            lines.append(
                f"| {case['case']} | {number} | {kind(statement['sql'])} | {'yes' if statement['cached'] else ''} | {plan} | "
                f"{small_rows if small_rows is not None else ''} | {big_rows if big_rows is not None else ''} | {ratio} | "
                f"{statement.get('pages', '')} / {twin.get('pages', '')} |"
            )
        if len(other) != len(case["statements"]):
            lines.append(
                f"| {case['case']} | | statements: {len(case['statements'])} small, {len(other)} big | | | | | | |"
            )
    return "\n".join(lines) + "\n"
