"""Measure every case of issue 14 on the benchmark Slurm database, next to TrailblazingTurtle's figures.

    .venv/bin/python bench/jobstats/generate.py          # once: 2M jobs in bench_slurm_acct_db
    .venv/bin/python bench/jobstats/run.py -n 120 --rounds 3 --label after

Cases: the heavy user's pages (as its own and as staff), a light user (about 400 jobs), staff's
every-user list, the DataTables requests as our page sends them and as TT's page sends them
(order by submit time, 10 rows), the floor (a minimal authenticated DRF answer: a 400 of the
jobs API, same middleware, no Slurm query), the first request after a count expires (the
counts' timestamps aged in Redis) and after the cache is lost (Redis flushed), their controls
(the floor and the first page after the server sat idle IDLE_SECONDS, as an aged request does
while the bench waits for the previous one's background recount: a request after an idle spell
is slower on its own), and job-script
upload throughput (4 client threads, --uploads requests). Rounds are interleaved and pooled;
the load average is recorded before and after.

Starts gunicorn (2 workers) on 127.0.0.1:8766 with the portal against ``bench_slurm_acct_db``
(--slurm-db: e.g. the 8 M-job ``bench8m_slurm_acct_db`` of generate.py --jobs 8000000) through the
SELECT-only account, the portal database on MariaDB (``bench_userportal``) and the
stack's Prometheus (127.0.0.1:9090; --prometheus to change), signs in as ``heavy`` with a
session created directly in the session store, requests each page N times after a warm-up, and
prints p50/p95/max per page with the number of SQL statements of one request (counted in
process with Django's test client against the same databases). Results are written to
bench/jobstats/results-<date>.md (appended, with --label).

The job page is measured over N different finished jobs of the heavy user (nothing cached
from an earlier request of the same job).

``--explain`` measures no time: for each case it captures the Slurm statements of one request
with the cache emptied (every statement the case can run: the counts and the uid lookup too)
and of the next one (what a warm request runs), and gives each statement's EXPLAIN (index,
estimated rows, filesort) and the rows it really examined (the session's Handler_read_*
counters around it, as the SELECT-only account): a figure independent of the machine's load.
They are written to explain-<slurm db>.json; ``curve.py explain A.json B.json`` prints two
sizes side by side (markdown), ``curve.py timings`` pools --timings-json files of two sizes.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import explain  # bench/jobstats/ is the script's own directory on sys.path
import portal_metrics
import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_PORT = 8766
PORT = DEFAULT_PORT  # --port
METRICS_TOKEN = secrets.token_urlsafe(16)  # this run's /metrics bearer
METRICS_REDIS = "redis://127.0.0.1:6379/13"


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        "SECRET_KEY": "bench-only-not-secret",
        "PORTAL_DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DATABASE_URL": args.portal_db,
        "SLURMDB_URL": f"mysql://bench_portal:bench@127.0.0.1:3306/{args.slurm_db}",
        "SLURM_CLUSTERS": "bench",
        "PROMETHEUS_URL": args.prometheus,
        "PORTAL_MODULES": "jobstats",
        "PORTAL_CACHE_URL": args.cache,
        # the portal's own /metrics, recorded around the timed requests (portal_metrics.py)
        "PORTAL_METRICS_TOKEN": METRICS_TOKEN,
        "PORTAL_METRICS_REDIS_URL": args.metrics_redis,
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


def prepare(username: str, *, migrate: bool = True) -> str:
    """Migrate the portal database, create the user, return a session key signed in as them."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    if migrate:
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


# TrailblazingTurtle's p95 (ms) on the same machine type and database (issue 14's table).
TT_P95 = {
    "user page": 146,
    "jobs API, first page": 24,
    "light user page": 17,
    "light users' pages, each user's first in the server": 17,  # TT keeps nothing per user between requests
    "jobs API, first page, each user's first in the server": 24,
    "staff: user's API, first page": 27,
    "staff: user's API, 40,000 rows deep": 273,
    "staff: user's API, search": 250,
    "staff: every user's jobs, first page": 228,
    "after count expiry: jobs API, first page": 23,
    "after count expiry: staff every user": 245,
}
OUR_PAGE = "format=datatables&draw=1&length=50&columns[7][data]=time_start&order[0][column]=7&order[0][dir]=desc"
# TT's jobs table: 10 rows ordered by submit time, columns id, name, submit, start, end searchable.
TT_PAGE = (
    "format=datatables&draw=1&length=10&columns[0][data]=id_job&columns[1][data]=job_name"
    "&columns[2][data]=time_submit&columns[3][data]=time_start&columns[4][data]=time_end"
    "&order[0][column]=2&order[0][dir]=desc"
)


# A column no index of the job table orders (DataTables lets every column be sorted).
BY_NAME = "format=datatables&draw=1&length=50&columns[0][data]=job_name&order[0][column]=0&order[0][dir]=asc"


def pages(username: str, job_ids: list[int]) -> dict[str, list[str]]:
    api = f"/api/jobs/?{OUR_PAGE}&username={username}"
    return {
        "user page": [f"/secure/jobstats/{username}/"],
        "jobs API, first page": [f"{api}&start=0"],
        "jobs API as TT's page sends it": [f"/api/jobs/?{TT_PAGE}&start=0"],
        "jobs API, 40,000 rows deep": [f"{api}&start=40000"],
        "jobs API, search": [f"{api}&start=0&search[value]=train"],
        "job page": [f"/secure/jobstats/{username}/{job_id}/" for job_id in job_ids],
        "floor (authenticated DRF 400)": ["/api/jobs/?format=nope"],
    }


def staff_pages(heavy: str) -> dict[str, list[str]]:
    api = f"/api/jobs/?{OUR_PAGE}&username={heavy}"
    return {
        "staff: user's API, first page": [f"{api}&start=0"],
        "staff: user's API, 40,000 rows deep": [f"{api}&start=40000"],
        "staff: user's API, search": [f"{api}&start=0&search[value]=train"],
        "staff: every user's jobs, first page": [f"/api/jobs/?{OUR_PAGE}&start=0"],
        "staff: every user's jobs as TT's page": [f"/api/jobs/?{TT_PAGE}&start=0"],
    }


def explain_cases(heavy: str, light: str, job_ids: list[int]) -> list[tuple[str, str, str]]:
    """``(case, username, URL)`` of every case of the timed run, one URL each (the cold ones are the same URLs)."""
    staff = "bench-staff"
    cases = [(name, heavy, page_urls[0]) for name, page_urls in pages(heavy, job_ids).items()]
    cases.append(("light user page", light, f"/secure/jobstats/{light}/"))
    cases += [(name, staff, page_urls[0]) for name, page_urls in staff_pages(heavy).items()]
    # Not timed, but where a cost could follow the history: every user's jobs deep and searched.
    every, own = f"/api/jobs/?{OUR_PAGE}", f"/api/jobs/?{OUR_PAGE}&username={heavy}"
    job_id = job_ids[0] if job_ids else 1
    cases += [
        ("home page (the jobstats card)", heavy, "/"),
        ("jobs API, search by job id", heavy, f"{own}&start=0&search[value]={job_id}"),
        ("staff: every user's jobs, 40,000 rows deep", staff, f"{every}&start=40000"),
        ("staff: every user's jobs, search", staff, f"{every}&start=0&search[value]=train"),
        ("staff: every user's jobs, search by job id", staff, f"{every}&start=0&search[value]={job_id}"),
        ("staff: every user's jobs, ordered by name", staff, f"/api/jobs/?{BY_NAME}&start=0"),
        ("jobs API, ordered by name", heavy, f"/api/jobs/?{BY_NAME}&start=0&username={heavy}"),
        (
            "jobs API as TT's page, oldest first",
            heavy,
            f"/api/jobs/?{TT_PAGE.replace('dir]=desc', 'dir]=asc')}&start=0",
        ),
    ]
    return cases


def light_user(target: int = 400) -> str:
    """A user with about ``target`` jobs (the base database's users have about 400 each; a bigger one's, only
    generate.py's --light-user, u00001)."""
    from django.db.models import Count

    from slurm.models import cluster_models

    models = cluster_models("bench")
    counts = (
        models.job.objects.values("id_user")
        .annotate(n=Count("job_db_inx"))
        .filter(n__gte=target - 30, n__lte=target + 30)
    )
    uid = next(iter(counts.values_list("id_user", flat=True)[:1]), None)
    if uid is None:
        raise SystemExit("no user with about 400 jobs")
    assoc = models.job.objects.filter(id_user=uid).values_list("id_assoc", flat=True).first()
    return str(models.assoc.objects.get(id_assoc=assoc).user)


def light_users(count: int, skip: str, target: int = 400) -> list[str]:
    """``count`` users with about ``target`` jobs each, other than ``skip`` (the light user of the repeated case)."""
    from django.db.models import Count

    from slurm.models import cluster_models

    models = cluster_models("bench")
    counts = (
        models.job.objects.values("id_user")
        .annotate(n=Count("job_db_inx"))
        .filter(n__gte=target - 30, n__lte=target + 30)
        .order_by("id_user")
    )
    names = []
    for uid in counts.values_list("id_user", flat=True)[: count + 1]:
        assoc = models.job.objects.filter(id_user=uid).values_list("id_assoc", flat=True).first()
        name = str(models.assoc.objects.get(id_assoc=assoc).user)
        if name != skip:
            names.append(name)
    if len(names) < count:
        raise SystemExit(f"only {len(names)} users with about {target} jobs")
    return names[:count]


def seen_before(urls: dict[str, str]) -> None:
    """Each URL requested once in this process with its session (untimed), not by the server's processes.

    The shared cache (Redis) then knows each user's uid and counts, as for a user who came back:
    what the server's processes have not seen is only their own memos of the user's statements.
    """
    from django.test import Client

    for url, key in urls.items():
        client = Client(HTTP_HOST="127.0.0.1")
        client.cookies["sessionid"] = key
        if client.get(url).status_code != 200:
            raise SystemExit(f"{url}: not 200 in process")


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
        if response.status_code != (400 if "floor" in name else 200):
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        counts[name] = len(portal) + len(slurm)
        counts[f"{name} (slurm)"] = len(slurm)
    return counts


def start_gunicorn(env: dict[str, str], workers: int, port: int | None = None) -> subprocess.Popen[bytes]:
    """gunicorn serving the portal, returned once each worker has loaded it (no request sent: none is warmed)."""
    port = port or PORT
    log = (HERE / "gunicorn.log").open("ab")
    ready = Path(tempfile.mkdtemp(prefix="bench-ready-"))
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--timeout", "120",
         "-c", str(HERE / "gunicorn_ready.py"), "userportal.wsgi:application"],
        cwd=ROOT, env={**os.environ, **env, "BENCH_READY_DIR": str(ready)}, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        for _ in range(600):
            if len(list(ready.iterdir())) >= workers:
                return process
            if process.poll() is not None:
                break
            time.sleep(0.05)
        process.terminate()
        raise SystemExit("gunicorn did not start; see bench/jobstats/gunicorn.log")
    finally:
        shutil.rmtree(ready, ignore_errors=True)


def prepare_staff(username: str = "bench-staff") -> str:
    from django.contrib.auth import get_user_model

    get_user_model().objects.update_or_create(username=username, defaults={"is_staff": True})
    return prepare(username)


def service_token() -> str:
    """A fresh API token of the service account the uploads use."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from userportal.access import SERVICE_GROUP
    from userportal.tokens import issue_token

    user, _ = get_user_model().objects.get_or_create(username="bench-uploader")
    user.groups.add(Group.objects.get_or_create(name=SERVICE_GROUP)[0])
    return issue_token(user, name="bench")[1]


RECOUNT_WAITS: list[float] = []  # seconds until an aged request's background recounts landed


def age_counts(keep_busy: Callable[[], object] | None = None) -> None:
    """Make every cached count look older than COUNT_CACHE_SECONDS (as after 5 minutes), keeping its value.

    First waits for the recounts the previous aged request started in the background (their
    counts re-dated), so that no recount lands on a count just aged, and no request is timed
    while the previous one's recount still reads the table (a full scan for every user's jobs).
    While it waits, ``keep_busy`` (an untimed request of the same page) keeps the server in the
    state the warm cases are measured in, back to back; without it the server sits idle, and a
    request after an idle spell is slower on this machine whatever it does (the idle controls).
    """
    from django.core.cache import cache

    from jobstats.services import COUNT_STALE_SECONDS

    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # Django's RedisCache
    keys = [raw.decode().split(":", 2)[2] for raw in client.scan_iter(match="*jobstats:count:*")]  # "<prefix>:<v>:"

    def unrecounted() -> list[str]:
        return [k for k in keys if k + ":recount" in keys and (cache.get(k) or (0, 1.0))[1] == 0.0]

    started = time.perf_counter()
    while unrecounted() and time.perf_counter() - started < 600:
        if keep_busy is None:
            time.sleep(0.02)
        else:
            keep_busy()  # answered from the stale count: its recount's lock is held, no second recount
    if any(key.endswith(":recount") for key in keys):
        RECOUNT_WAITS.append(time.perf_counter() - started)
    locks = [key for key in keys if key.endswith(":recount")]
    counts = [key for key in keys if not key.endswith(":recount")]
    if keep_busy is not None:
        keep_busy()  # the server's last request before the timed one: like a warm case's, no idle gap
    # three round trips to Redis (hundreds of keys one by one would leave the server idle ~50 ms)
    cache.delete_many(locks)
    aged = {key: (value[0], 0.0) for key, value in cache.get_many(counts).items() if isinstance(value, tuple)}
    cache.set_many(aged, COUNT_STALE_SECONDS)


def wait_for_recounts() -> None:
    """Wait (untimed, at most 600 s) until no background recount holds its lock on a stale count."""
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # Django's RedisCache
    locks = [raw.decode().split(":", 2)[2] for raw in client.scan_iter(match="*jobstats:count:*:recount")]
    started = time.perf_counter()
    while any(cache.get(lock) is not None for lock in locks) and time.perf_counter() - started < 600:
        time.sleep(0.02)


def flush_cache() -> None:
    from django.core.cache import cache

    cache.clear()  # the bench's own Redis db


IDLE_SECONDS = 0.2  # about the wait for a background recount before an aged request (reported)


def sit_idle() -> None:
    time.sleep(IDLE_SECONDS)


# What runs before each timed request of a case, given an untimed request of the case's page.
BEFORE: dict[str, Callable[[Callable[[], object]], None]] = {
    "aged": age_counts,  # back to back: the server kept busy while the previous recount lands
    "aged after idle": lambda _page: age_counts(),  # the server idle meanwhile (IDLE_SECONDS or so)
    "flushed": lambda _page: flush_cache(),
    "idle": lambda _page: sit_idle(),
}
SLOW_CASES = (
    "jobs API as TT's page sends it",
    "after count expiry: staff every user",
    "after count expiry, server idle before: staff every user",
)


def measure(
    cases: list[tuple[str, str | dict[str, str], list[str], str]], n: int, warmup: int, rounds: int
) -> dict[str, list[float]]:
    """Each case ``(name, session key, URLs, before)`` n times in all, over interleaved rounds.

    ``before`` names what runs before each timed request ("aged": counts made stale, "flushed":
    the cache emptied, "first visit": nothing, and no untimed request of the case's URLs either,
    each URL timed once), "": nothing). The session key may be one per URL (a dict). Answers
    must be 200, or 400 for the floor.
    """
    base = f"http://127.0.0.1:{PORT}"
    http = requests.Session()
    timings: dict[str, list[float]] = {name: [] for name, *_rest in cases}
    per_round = max(n // rounds, 1)
    for round_number in range(rounds):
        for name, key, page_urls, before in cases:
            if before == "first visit" and len(page_urls) < per_round * rounds:
                raise SystemExit(f"{name}: {len(page_urls)} URLs for {per_round * rounds} first visits")

            def get(url: str, key: str | dict[str, str] = key) -> requests.Response:
                session = key if isinstance(key, str) else key[url]
                return http.get(base + url, cookies={"sessionid": session}, timeout=60, allow_redirects=False)

            if round_number == 0 and before != "first visit":
                for i in range(warmup):  # a page of several URLs (the job page) warms up on its extra ones
                    get(page_urls[-1 - i % len(page_urls)])
            wait_for_recounts()  # no case is timed while an earlier case's background recount reads the table
            if before not in ("flushed", "first visit"):  # warm again after an earlier case emptied the cache: untimed
                get(page_urls[0])
                wait_for_recounts()
            for i in range(per_round):
                url = page_urls[(round_number * per_round + i) % len(page_urls)]
                if before in BEFORE:
                    BEFORE[before](functools.partial(get, url))
                started = time.perf_counter()
                response = get(url)
                timings[name].append((time.perf_counter() - started) * 1000)
                if response.status_code not in (200, 400) or (response.status_code == 400) != ("floor" in name):
                    raise SystemExit(f"{url}: HTTP {response.status_code}")
    return timings


def upload_throughput(token: str, total: int, threads: int = 4) -> tuple[float, list[float]]:
    """``total`` TT-style uploads (job id only) from ``threads`` client threads: requests/s and latencies (ms)."""
    from concurrent.futures import ThreadPoolExecutor

    url = f"http://127.0.0.1:{PORT}/api/jobscripts/"
    first = int(time.time()) % 1_000_000 * 1000 + 10_000_000  # ids no earlier run used
    local = __import__("threading").local()

    def one(i: int) -> float:
        http = getattr(local, "http", None) or requests.Session()
        local.http = http
        body = {"id_job": first + i, "submit_script": f"#!/bin/bash\n#SBATCH -t 1:00:00\nsrun ./task {i}\n"}
        started = time.perf_counter()
        response = http.post(url, json=body, headers={"Authorization": f"Token {token}"}, timeout=60)
        if response.status_code != 201:
            raise SystemExit(f"upload: HTTP {response.status_code} {response.text[:200]}")
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = list(pool.map(one, range(total)))
    return total / (time.perf_counter() - started), latencies


def slurm_db_size() -> str:
    """The Slurm database's generation parameters (jobs, users) as generate.py recorded them."""
    from django.db import connections

    with connections["slurm"].cursor() as cursor:
        cursor.execute("SELECT params FROM bench_params")
        params = json.loads(cursor.fetchone()[0])
    return f"{params['jobs']:,} jobs, {params['users']:,} users, heavy user {params['heavy_jobs']:,} jobs"


def report(
    label: str, args: argparse.Namespace, timings: dict[str, list[float]], counts: dict[str, int], extra: list[str]
) -> str:
    lines = [
        f"## {label} ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Slurm DB {args.slurm_db} ({slurm_db_size()}), "
        f"gunicorn {args.workers} workers, {args.n} requests per case in {args.rounds} interleaved rounds after "
        f"{args.warmup} warm-up, Prometheus {args.prometheus}, portal DB {args.portal_db.split('@')[-1]}, "
        f"cache {args.cache.split('://')[0]}.",
        "",
        "| case | TT p95 | p50 ms | p95 ms | max ms | SQL statements (Slurm DB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in timings.items():
        lines.append(
            f"| {name} | {TT_P95.get(name, '')} | {statistics.median(values):.0f} | {percentile(values, 0.95):.0f} | "
            f"{max(values):.0f} | {counts.get(name, '?')} ({counts.get(f'{name} (slurm)', '?')}) |"
        )
    return "\n".join([*lines, "", *extra]) + "\n"


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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, pooled")
    parser.add_argument("--uploads", type=int, default=2000, help="job-script uploads timed (0: none)")
    parser.add_argument("--cold-n", type=int, default=0, help="requests of the slow cases (default: -n)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not append to the results file")
    parser.add_argument("--slurm-db", default="bench_slurm_acct_db", help="the generated Slurm database to read")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="gunicorn's port (another run may hold the default)"
    )
    parser.add_argument(
        "--metrics-redis", default=METRICS_REDIS, help="the portal's /metrics store (emptied by no one)"
    )
    parser.add_argument("--light-user", default="", help="the light user (default: one with about 400 jobs)")
    parser.add_argument("--explain", action="store_true", help="no timing: each case's statements, plans, rows read")
    parser.add_argument("--timings-json", help="also write the raw timings there (curve.py pools such files)")
    args = parser.parse_args(argv)
    global PORT  # one run, one port: the helpers read it
    PORT = args.port
    env = bench_env(args)
    subprocess.run(
        [
            "mysql",
            "-h127.0.0.1",
            "-uroot",
            "-e",
            f"CREATE DATABASE IF NOT EXISTS `{args.portal_db.rsplit('/', 1)[-1]}` CHARACTER SET utf8mb4",
        ],
        check=True,
    )
    setup_django(env)

    heavy_key = prepare(args.user)
    light = args.light_user or light_user()
    if args.explain:
        prepare(light), prepare_staff()
        found = explain.run(explain_cases(args.user, light, heavy_jobs(args.user, 1)), args.slurm_db, slurm_db_size())
        path = HERE / f"explain-{args.slurm_db}.json"
        path.write_text(json.dumps(found, indent=1) + "\n")
        print(explain.table(found))
        print(f"written to {path.relative_to(ROOT)}")
        return 0
    light_key, staff_key = prepare(light), prepare_staff()
    # Users the server's processes have not served (the cache knows them): one request each.
    newcomers = light_users(2 * args.n, skip=light)
    first_visits = {name: prepare(name, migrate=False) for name in newcomers}
    newcomer_pages = {f"/secure/jobstats/{name}/": first_visits[name] for name in newcomers[: args.n]}
    newcomer_api = {
        f"/api/jobs/?{OUR_PAGE}&username={name}&start=0": first_visits[name] for name in newcomers[args.n :]
    }
    token = service_token()
    flush_cache()  # nothing from an earlier run
    seen_before({**newcomer_pages, **newcomer_api})
    urls = pages(args.user, heavy_jobs(args.user, args.n + args.warmup))
    staff_urls = staff_pages(args.user)
    cases = [(name, heavy_key, page_urls, "") for name, page_urls in urls.items()]
    cases.append(("light user page", light_key, [f"/secure/jobstats/{light}/"], ""))
    cases.append(
        ("light users' pages, each user's first in the server", newcomer_pages, list(newcomer_pages), "first visit")
    )
    cases.append(
        ("jobs API, first page, each user's first in the server", newcomer_api, list(newcomer_api), "first visit")
    )
    cases += [(name, staff_key, page_urls, "") for name, page_urls in staff_urls.items()]
    cases += [
        ("after count expiry: jobs API, first page", heavy_key, urls["jobs API, first page"], "aged"),
        ("after count expiry: staff every user", staff_key, staff_urls["staff: every user's jobs, first page"], "aged"),
        # the same after the server sat idle while the previous recount landed: compare with the idle controls
        (
            "after count expiry, server idle before: jobs API, first page",
            heavy_key,
            urls["jobs API, first page"],
            "aged after idle",
        ),
        (
            "after count expiry, server idle before: staff every user",
            staff_key,
            staff_urls["staff: every user's jobs, first page"],
            "aged after idle",
        ),
        # controls: the same wait before the request, nothing stale (the aged cases' yardstick)
        ("after 200 ms idle: floor", heavy_key, urls["floor (authenticated DRF 400)"], "idle"),
        ("after 200 ms idle: jobs API, first page", heavy_key, urls["jobs API, first page"], "idle"),
        ("after the cache is lost: jobs API, first page", heavy_key, urls["jobs API, first page"], "flushed"),
        ("after the cache is lost: light user page", light_key, [f"/secure/jobstats/{light}/"], "flushed"),
    ]
    load_before = os.getloadavg()
    server = start_gunicorn(env, args.workers)  # terminated below, also on errors
    try:
        # Cases seconds long each (a cache lost, a sort of all the heavy user's rows, waiting for the
        # previous request's background recount of every user's jobs) run --cold-n times.
        slow = [c for c in cases if c[3] == "flushed" or c[0] in SLOW_CASES]
        scraped = portal_metrics.scrape(f"http://127.0.0.1:{PORT}", METRICS_TOKEN)
        timings = measure([c for c in cases if c not in slow], args.n, args.warmup, args.rounds)
        timings.update(measure(slow, args.cold_n or args.n, 1, args.rounds))
        recorded = portal_metrics.per_view(scraped, portal_metrics.scrape(f"http://127.0.0.1:{PORT}", METRICS_TOKEN))
        measure([("warm", heavy_key, urls["jobs API, first page"], "")], 1, 0, 1)  # counts cached again
        # After a restart (new workers, the cache in Redis kept): the first request of the new
        # server, once its workers have loaded the portal; each restart times one case, in turn.
        restarted = [
            ("after a restart: floor", heavy_key, urls["floor (authenticated DRF 400)"]),
            ("after a restart: jobs API, first page", heavy_key, urls["jobs API, first page"]),
            ("after a restart: light user page", light_key, [f"/secure/jobstats/{light}/"]),
        ]
        for i in range(max(args.cold_n or args.n, len(restarted))):
            name, key, page_urls = restarted[i % len(restarted)]
            server.terminate()
            server.wait(timeout=30)
            server = start_gunicorn(env, args.workers)
            for case, values in measure([(name, key, page_urls, "first visit")], 1, 0, 1).items():
                timings.setdefault(case, []).extend(values)
        rate, latencies = upload_throughput(token, args.uploads) if args.uploads else (0.0, [0.0])
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_after = os.getloadavg()
    counts = count_queries(args.user, {k: v[-1:] if k != "job page" else v[:1] for k, v in urls.items()})
    extra = [
        f"Light user: {light}. Uploads ({args.uploads}, 4 threads, TT: 311/s): {rate:.0f}/s, "
        f"p99 {percentile(latencies, 0.99):.0f} ms.",
        f"Load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}.",
    ]
    if RECOUNT_WAITS:
        extra.append(
            f"Background recounts after an expiry landed within {statistics.median(RECOUNT_WAITS) * 1000:.0f} ms "
            f"(median), {max(RECOUNT_WAITS) * 1000:.0f} ms (max) of the next aging (waited for, not timed)."
        )
    extra += ["", *portal_metrics.table(recorded)]
    text = report(args.label, args, timings, counts, extra)
    if args.timings_json:
        raw = {"slurm_db": args.slurm_db, "size": slurm_db_size(), "label": args.label, "timings": timings,
               "load_before": load_before, "load_after": load_after, "counts": counts}  # fmt: skip
        Path(args.timings_json).write_text(json.dumps(raw) + "\n")
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
