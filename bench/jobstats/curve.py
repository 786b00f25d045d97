"""The curve: the same cases on two sizes of the Slurm database, side by side (issue 14).

    .venv/bin/python bench/jobstats/curve.py explain explain-bench_slurm_acct_db.json explain-bench8m_slurm_acct_db.json
    .venv/bin/python bench/jobstats/curve.py timings --small a1.json a2.json --big b1.json b2.json

``explain``: rows examined by each Slurm statement of each case (run.py --explain files).
``timings``: p50/p95 per case, the runs of each size pooled (run.py --timings-json files, made
back to back, interleaved: small, big, small, big), with the load average of each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import explain  # bench/jobstats/ is the script's own directory on sys.path
from run import percentile


def _load(paths: list[str]) -> list[dict[str, Any]]:
    return [json.loads(Path(path).read_text()) for path in paths]


def pooled(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for run in runs:
        for case, values in run["timings"].items():
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
    for run in [*small, *big]:
        before, after = (" ".join(f"{v:.2f}" for v in run[key]) for key in ("load_before", "load_after"))
        lines.append(f"- {run['label']} ({run['slurm_db']}): {before} -> {after}")
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
    args = parser.parse_args(argv)
    if args.command == "explain":
        small, big = _load([args.small, args.big])
        print(explain.compare(small, big))
    else:
        print(timings_table(_load(args.small), _load(args.big)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
