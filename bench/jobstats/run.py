"""Measure the jobstats pages of the heavy user on the benchmark Slurm database.

    .venv/bin/python bench/jobstats/generate.py          # once: 2M jobs in bench_slurm_acct_db
    .venv/bin/python bench/jobstats/run.py -n 40 --label baseline

Starts gunicorn (2 workers) on 127.0.0.1:8766 with the portal against ``bench_slurm_acct_db``
through the SELECT-only account, the portal database on MariaDB (``bench_userportal``) and the
stack's Prometheus (127.0.0.1:9090; --prometheus to change), signs in as ``heavy`` with a
session created directly in the session store, requests each page N times after a warm-up, and
prints p50/p95/max per page with the number of SQL statements of one request (counted in
process with Django's test client against the same databases). Results are written to
bench/jobstats/results-<date>.md (appended, with --label).

The job page is measured over N different finished jobs of the heavy user (nothing cached
from an earlier request of the same job).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PORT = 8766


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        "SECRET_KEY": "bench-only-not-secret",
        "PORTAL_DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DATABASE_URL": args.portal_db,
        "SLURMDB_URL": "mysql://bench_portal:bench@127.0.0.1:3306/bench_slurm_acct_db",
        "SLURM_CLUSTERS": "bench",
        "PROMETHEUS_URL": args.prometheus,
        "PORTAL_MODULES": "jobstats",
        "PORTAL_CACHE_URL": args.cache,
        "PORTAL_CONN_MAX_AGE": "60",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "PORTAL_HTTPS": "false",
        "PORTAL_MANIFEST_STATIC": "false",  # no collectstatic for the bench: static files are not measured
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "userportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare(username: str) -> str:
    """Migrate the portal database, create the user, return a session key signed in as them."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    user, _created = get_user_model().objects.get_or_create(username=username)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return str(store.session_key)


def heavy_jobs(username: str, count: int) -> list[int]:
    """``count`` finished jobs of the user spread over their history (ids)."""
    from slurm.visibility import jobs_of_user

    ids = list(
        jobs_of_user(username, "bench").filter(time_end__gt=0).order_by("job_db_inx").values_list("id_job", flat=True)
    )
    step = max(len(ids) // (count + 1), 1)
    return [ids[i * step] for i in range(1, count + 1) if i * step < len(ids)]


def pages(username: str, job_ids: list[int]) -> dict[str, list[str]]:
    common = "format=datatables&draw=1&length=50&columns[7][data]=time_start&order[0][column]=7&order[0][dir]=desc"
    api = f"/api/jobs/?{common}&username={username}"
    return {
        "user page": [f"/secure/jobstats/{username}/"],
        "jobs API, first page": [f"{api}&start=0"],
        "jobs API, 40,000 rows deep": [f"{api}&start=40000"],
        "jobs API, search": [f"{api}&start=0&search[value]=train"],
        "job page": [f"/secure/jobstats/{username}/{job_id}/" for job_id in job_ids],
    }


def count_queries(username: str, urls: dict[str, list[str]]) -> dict[str, int]:
    """SQL statements of one request of each page (both databases), through the test client."""
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    counts = {}
    for name, page_urls in urls.items():
        url = page_urls[-1]
        client.get(url)  # warm caches as the timed run does
        with (
            CaptureQueriesContext(connections["default"]) as portal,
            CaptureQueriesContext(connections["slurm"]) as slurm,
        ):
            response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        counts[name] = len(portal) + len(slurm)
        counts[f"{name} (slurm)"] = len(slurm)
    return counts


def start_gunicorn(env: dict[str, str], workers: int) -> subprocess.Popen[bytes]:
    log = (HERE / "gunicorn.log").open("ab")
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{PORT}", "--timeout", "120",
         "userportal.wsgi:application"],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log,
    )  # fmt: skip
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{PORT}/", timeout=60, allow_redirects=False)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not start; see bench/jobstats/gunicorn.log")


def measure(session_key: str, urls: dict[str, list[str]], n: int, warmup: int) -> dict[str, list[float]]:
    http = requests.Session()
    http.cookies.set("sessionid", session_key, domain="127.0.0.1")
    base = f"http://127.0.0.1:{PORT}"
    timings: dict[str, list[float]] = {}
    for name, page_urls in urls.items():
        for i in range(warmup):  # a page of several URLs (the job page) warms up on its extra ones
            http.get(
                base + (page_urls[0] if len(page_urls) == 1 else page_urls[n + i % (len(page_urls) - n)]), timeout=60
            )
        values = []
        for i in range(n):
            url = base + page_urls[i % len(page_urls)]
            started = time.perf_counter()
            response = http.get(url, timeout=60, allow_redirects=False)
            values.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
        timings[name] = values
    return timings


def report(label: str, args: argparse.Namespace, timings: dict[str, list[float]], counts: dict[str, int]) -> str:
    lines = [
        f"## {label} ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"gunicorn {args.workers} workers, {args.n} requests per page after {args.warmup} warm-up, "
        f"Prometheus {args.prometheus}, portal DB {args.portal_db.split('@')[-1]}, cache {args.cache.split('://')[0]}.",
        "",
        "| page | p50 ms | p95 ms | max ms | SQL statements (Slurm DB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in timings.items():
        lines.append(
            f"| {name} | {statistics.median(values):.0f} | {percentile(values, 0.95):.0f} | {max(values):.0f} | "
            f"{counts.get(name, '?')} ({counts.get(f'{name} (slurm)', '?')}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=40, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--user", default="heavy")
    parser.add_argument("--label", default="run")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--portal-db", default="mysql://root@127.0.0.1:3306/bench_userportal")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--no-write", action="store_true", help="print only, do not append to the results file")
    args = parser.parse_args(argv)
    env = bench_env(args)
    subprocess.run(
        [
            "mysql",
            "-h127.0.0.1",
            "-uroot",
            "-e",
            "CREATE DATABASE IF NOT EXISTS bench_userportal CHARACTER SET utf8mb4",
        ],
        check=True,
    )
    setup_django(env)
    from django.core.cache import cache

    session_key = prepare(args.user)
    cache.clear()  # the bench's own Redis db: nothing from an earlier run
    urls = pages(args.user, heavy_jobs(args.user, args.n + args.warmup))
    server = start_gunicorn(env, args.workers)  # terminated below, also on errors
    try:
        timings = measure(session_key, urls, args.n, args.warmup)
    finally:
        server.terminate()
        server.wait(timeout=30)
    counts = count_queries(args.user, {k: v[-1:] if k != "job page" else v[:1] for k, v in urls.items()})
    text = report(args.label, args, timings, counts)
    print(text)
    if not args.no_write:
        path = HERE / f"results-{datetime.datetime.now(datetime.UTC):%Y-%m-%d}.md"
        header = "" if path.exists() else "# jobstats benchmark results\n\n"
        with path.open("a") as out:
            out.write(header + text + "\n")
        print(f"appended to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
