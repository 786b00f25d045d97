"""The curve: the same cases on two sizes of the Slurm database, side by side (issue 14).

    .venv/bin/python bench/jobstats/curve.py explain explain-bench_slurm_acct_db.json explain-bench8m_slurm_acct_db.json
    .venv/bin/python bench/jobstats/curve.py timings --small a1.json a2.json --big b1.json b2.json

    .venv/bin/python bench/jobstats/curve.py ab -n 100      # both sizes served at once, requests alternated

``explain``: rows examined by each Slurm statement of each case (run.py --explain files).
``timings``: p50/p95 per case, the runs of each size pooled (run.py --timings-json files, made
back to back, interleaved: small, big, small, big), with the load average of each run.
``ab``: one gunicorn (2 workers) per size, each with its own Redis cache database, and every
warm case's requests alternated between them request by request (small then big, then big then
small): whatever else the shared machine does falls on both sizes alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import explain  # bench/jobstats/ is the script's own directory on sys.path
import redis
import requests
import run
from run import percentile


def _load(paths: list[str]) -> list[dict[str, Any]]:
    return [json.loads(Path(path).read_text()) for path in paths]


def pooled(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for one in runs:
        for case, values in one["timings"].items():
            timings.setdefault(case, []).extend(values)
    return timings


def timings_table(small: list[dict[str, Any]], big: list[dict[str, Any]]) -> str:
    """p50/p95 (ms) of each case at both sizes, pooled over the runs, and the big/small ratio of the p50s."""
    a, b = pooled(small), pooled(big)
    lines = [
        f"Pooled: {len(small)} runs of {small[0]['slurm_db']} ({small[0]['size']}), {len(big)} runs of "
        f"{big[0]['slurm_db']} ({big[0]['size']}), made in the order given.",
        "",
        "| case | n small / big | small p50 / p95 ms | big p50 / p95 ms | big / small (p50) |",
        "|---|---:|---:|---:|---:|",
    ]
    for case, values in a.items():
        other = b.get(case, [])
        if not other:
            continue
        ratio = statistics.median(other) / statistics.median(values)
        lines.append(
            f"| {case} | {len(values)} / {len(other)} | {statistics.median(values):.0f} / "
            f"{percentile(values, 0.95):.0f} | {statistics.median(other):.0f} / {percentile(other, 0.95):.0f} | "
            f"{ratio:.2f} |"
        )
    lines += ["", "Load average (1, 5, 15 min) before and after each run:", ""]
    for one in [*small, *big]:
        before, after = (" ".join(f"{v:.2f}" for v in one[key]) for key in ("load_before", "load_after"))
        lines.append(f"- {one['label']} ({one['slurm_db']}): {before} -> {after}")
    return "\n".join(lines) + "\n"


def ab(args: argparse.Namespace) -> str:
    """Each warm case of run.py, requests alternated between the two sizes' servers; a markdown table."""
    sizes = (args.small_db, args.big_db)
    envs = {
        db: run.bench_env(argparse.Namespace(**vars(args), slurm_db=db, cache=cache))
        for db, cache in zip(sizes, args.caches, strict=True)
    }
    run.setup_django(envs[args.small_db])
    from django.db import connections

    heavy_key, light_key, staff_key = run.prepare(args.user), run.prepare(args.light_user), run.prepare_staff()
    sizes_of: dict[str, str] = {}
    cases: dict[str, list[tuple[str, str]]] = {}  # case -> (session key, URL) per size, in the order of sizes
    for db in sizes:
        with connections["slurm"].cursor() as cursor:  # the same user's job at the same place in its history
            cursor.execute(
                f"SELECT id_job FROM `{db}`.bench_job_table WHERE id_user = 20000 AND time_end > 0 "
                "ORDER BY job_db_inx LIMIT 1 OFFSET 25000"
            )
            job_id = cursor.fetchone()[0]
            cursor.execute(f"SELECT params FROM `{db}`.bench_params")
            params = json.loads(cursor.fetchone()[0])
        sizes_of[db] = f"{params['jobs']:,} jobs"
        own = [(name, heavy_key, urls[0]) for name, urls in run.pages(args.user, [job_id]).items()]
        light = [("light user page", light_key, f"/secure/jobstats/{args.light_user}/")]
        staff = [(name, staff_key, urls[0]) for name, urls in run.staff_pages(args.user).items()]
        for name, key, url in [*own, *light, *staff]:
            if name != "jobs API as TT's page sends it":  # a sort of 50,000 rows: run.py's slow cases
                cases.setdefault(name, []).append((key, url))
    for url in args.caches:  # this comparison's own caches: counts made again
        redis.Redis.from_url(url).flushdb()
    servers = []
    load_before = os.getloadavg()
    try:
        for port, db in zip(args.ports, sizes, strict=True):
            servers.append(run.start_gunicorn(envs[db], 2, port))
        sessions = []
        for port in args.ports:
            http = requests.Session()
            sessions.append((f"http://127.0.0.1:{port}", http))
        timings: dict[str, list[list[float]]] = {name: [[], []] for name in cases}

        def get(index: int, key: str, url: str) -> float:
            base, http = sessions[index]
            http.cookies.set("sessionid", key, domain="127.0.0.1")
            started = time.perf_counter()
            answer = http.get(base + url, timeout=120, allow_redirects=False)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != (400 if "format=nope" in url else 200):
                raise SystemExit(f"{base}{url}: HTTP {answer.status_code}")
            return elapsed

        for per_size in cases.values():  # warm-up: counts made, pages in the buffer pool
            for index, (key, url) in enumerate(per_size):
                for _ in range(3):
                    get(index, key, url)
        for i in range(args.n):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for name, per_size in cases.items():
                for index in order:
                    key, url = per_size[index]
                    timings[name][index].append(get(index, key, url))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
    load_after = os.getloadavg()
    lines = [
        f"Request-level A/B: {args.n} requests per case and size, alternated (small, big, then big, small), after "
        f"3 warm-up each; {args.small_db} ({sizes_of[args.small_db]}) on :{args.ports[0]}, {args.big_db} "
        f"({sizes_of[args.big_db]}) on :{args.ports[1]}, 2 gunicorn workers each. Load average before "
        f"{' '.join(f'{v:.2f}' for v in load_before)}, after {' '.join(f'{v:.2f}' for v in load_after)}.",
        "",
        "| case | small p50 / p95 ms | big p50 / p95 ms | big / small (p50) |",
        "|---|---:|---:|---:|",
    ]
    for name, (small, big) in timings.items():
        lines.append(
            f"| {name} | {statistics.median(small):.0f} / {percentile(small, 0.95):.0f} | "
            f"{statistics.median(big):.0f} / {percentile(big, 0.95):.0f} | "
            f"{statistics.median(big) / statistics.median(small):.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    plans = commands.add_parser("explain", help="rows examined per statement, two run.py --explain files")
    plans.add_argument("small")
    plans.add_argument("big")
    times = commands.add_parser("timings", help="pooled p50/p95, run.py --timings-json files of two sizes")
    times.add_argument("--small", nargs="+", required=True)
    times.add_argument("--big", nargs="+", required=True)
    both = commands.add_parser("ab", help="both sizes served at once, requests alternated")
    both.add_argument("-n", type=int, default=100)
    both.add_argument("--small-db", default="bench_slurm_acct_db")
    both.add_argument("--big-db", default="bench8m_slurm_acct_db")
    both.add_argument("--user", default="heavy")
    both.add_argument("--light-user", default="u00001")
    both.add_argument("--ports", type=int, nargs=2, default=(8770, 8771))
    both.add_argument("--caches", nargs=2, default=("redis://127.0.0.1:6379/10", "redis://127.0.0.1:6379/11"))
    both.add_argument("--portal-db", default="mysql://root@127.0.0.1:3306/bench_userportal_curve")
    both.add_argument("--prometheus", default="http://127.0.0.1:9099")
    both.add_argument("--metrics-redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args(argv)
    if args.command == "ab":
        print(ab(args))
        return 0
    if args.command == "explain":
        small, big = _load([args.small, args.big])
        print(explain.compare(small, big))
    else:
        print(timings_table(_load(args.small), _load(args.big)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
