"""Job-script upload throughput: TrailblazingTurtle's one-script API and the batch API (issue 14).

    .venv/bin/python bench/jobstats/uploads.py --slurmdb "$SLURMDB_URL" --cluster testcluster
    .venv/bin/python bench/jobstats/uploads.py --profile 400      # where a single upload's time goes

Serves the portal with gunicorn (2 workers, 127.0.0.1:8767 only) against a portal database on
MariaDB (``bench_uploads``, created and migrated here; its job scripts deleted before each run)
and the given Slurm database (read-only; the generated ``bench_slurm_acct_db`` by default), with
Redis db 12 as the cache, and a service account's token. Then, bounded in count or time:

* single: uploads as TrailblazingTurtle's uploader sends them (job id and script, no submit
  time: the portal looks each up in the job table), each with its own job id, from 4 client
  threads (--client): Debian's ``wrk`` with ``uploads.lua`` for --seconds (the default when
  installed: a C client, so the machine's 2 cores go to the server), or --single requests from
  4 Python threads on bare sockets, or (``--client requests``) through requests sessions, the
  tool of the first figures, which takes about a core itself;
* batch: --batch scripts in requests of --batch-size (with a submit time, as our uploader sends
  them), from 2 client threads.

Prints requests (or scripts) per second, p50/p99 latency, the gunicorn workers' CPU time per
upload (from /proc: robust to other load on the machine, unlike the rate), the client's own CPU
time per upload and the load average.
--profile N runs N single uploads in this process under cProfile (Django's test client, the
same middleware) and prints the functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import METRICS_REDIS, bench_env, percentile, setup_django  # noqa: E402
from run import PORT as _PAGE_PORT  # noqa: E402  (bench/jobstats/run.py, beside this file)

PORT = _PAGE_PORT + 1
SCRIPT = "#!/bin/bash\n#SBATCH --time=1:00:00\n#SBATCH --array=0-999\nsrun ./task $SLURM_ARRAY_TASK_ID\n"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (clock ticks in /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def workers_of(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def start(env: dict[str, str], workers: int):  # -> subprocess.Popen
    log = (HERE / "gunicorn.log").open("ab")
    process = subprocess.Popen(
        [str(HERE.parents[1] / ".venv/bin/gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{PORT}",
         "--timeout", "120", "userportal.wsgi:application"],
        cwd=HERE.parents[1], env={**os.environ, **env}, stdout=log, stderr=log,
    )  # fmt: skip
    for _ in range(150):
        try:
            requests.get(f"http://127.0.0.1:{PORT}/", timeout=30, allow_redirects=False)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not start; see bench/jobstats/gunicorn.log")


def load(token: str, bodies: list, path: str, threads: int) -> tuple[float, list[float]]:
    """POST every body from `threads` threads; (requests per second, latencies in ms)."""
    url = f"http://127.0.0.1:{PORT}{path}"
    local = threading.local()
    headers = {"Authorization": f"Token {token}"}

    def one(body: dict) -> float:
        http = getattr(local, "http", None) or requests.Session()
        local.http = http
        started = time.perf_counter()
        response = http.post(url, json=body, headers=headers, timeout=60)
        if response.status_code not in (200, 201):
            raise SystemExit(f"{path}: HTTP {response.status_code} {response.text[:200]}")
        return (time.perf_counter() - started) * 1000

    return timed(one, bodies, threads)


def timed(one, items: list, threads: int) -> tuple[float, list[float]]:
    """one(item) for every item from `threads` threads: (items per second, one's answers: latencies)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = list(pool.map(one, items))
    return len(items) / (time.perf_counter() - started), latencies


def client_cpu() -> float:
    """CPU seconds of this process's threads and of its finished children (wrk)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def load_socket(token: str, bodies: list, path: str, threads: int) -> tuple[float, list[float]]:
    """As load(), through bare sockets: each request's bytes built before the clock starts, one
    connection per request (gunicorn's sync workers close it), only the status line parsed."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nAuthorization: Token {token}\r\n"
    wire = []
    for body in bodies:
        data = json.dumps(body).encode()
        wire.append(f"{head}Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)

    def one(request: bytes) -> float:
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", PORT), timeout=60) as conn:
            conn.sendall(request)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        if answer[9:12] not in (b"200", b"201"):
            raise SystemExit(f"{path}: {answer[:300]!r}")
        return (time.perf_counter() - started) * 1000

    return timed(one, wire, threads)


def load_wrk(token: str, first: int, seconds: float, threads: int) -> tuple[int, float, float, float]:
    """Single uploads of ids first.. from wrk (uploads.lua) for `seconds`: count, requests/s, p50 and p99 ms."""
    command = [
        "wrk", f"-t{threads}", f"-c{threads}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(HERE / "uploads.lua"),
        f"http://127.0.0.1:{PORT}/api/jobscripts/", "--", str(first), token, json.dumps(SCRIPT), str(threads),
    ]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    if result["not_201"] or result["errors"]:
        raise SystemExit(f"wrk: {result['not_201']} answers other than 201, {result['errors']} socket errors")
    rate = result["requests"] / (result["duration_us"] / 1e6)
    return result["requests"], rate, result["p50_us"] / 1000, result["p99_us"] / 1000


def single(
    args: argparse.Namespace, token: str, first: int, count: int, seconds: float
) -> tuple[int, float, float, float]:
    """TT-style uploads (ids first..) from 4 client threads: count, requests/s, p50 and p99 in ms.

    ``count`` of them, or with wrk as many as it sends in ``seconds``.
    """
    if args.client == "wrk":
        return load_wrk(token, first, seconds, 4)
    bodies = [{"id_job": first + i, "submit_script": SCRIPT} for i in range(count)]
    rate, latencies = (load_socket if args.client == "socket" else load)(token, bodies, "/api/jobscripts/", 4)
    return count, rate, percentile(latencies, 0.5), percentile(latencies, 0.99)


def token_and_cleanup() -> str:
    from django.core.management import call_command
    from run import service_token

    from jobstats.models import JobScript

    call_command("migrate", verbosity=0)
    JobScript.objects.all().delete()
    return service_token()


def profile(token: str, count: int) -> None:
    import cProfile
    import pstats

    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    first = int(time.time()) % 100_000 * 1000 + 20_000_000
    client.post("/api/jobscripts/", {"id_job": first - 1, "submit_script": SCRIPT}, content_type="application/json")
    profiler = cProfile.Profile()
    started = time.process_time()
    profiler.enable()
    for i in range(count):
        client.post("/api/jobscripts/", {"id_job": first + i, "submit_script": SCRIPT}, content_type="application/json")
    profiler.disable()
    print(f"{count} uploads in process: {(time.process_time() - started) / count * 1000:.2f} ms CPU each (profiled)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slurmdb", default="mysql://bench_portal:bench@127.0.0.1:3306/bench_slurm_acct_db")
    parser.add_argument("--cluster", default="bench")
    parser.add_argument("--portal-db", default="mysql://root@127.0.0.1:3306/bench_uploads")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--single", type=int, default=4000, help="single uploads (4 threads; the first 200 untimed)")
    parser.add_argument("--seconds", type=int, default=8, help="with wrk: seconds of single uploads timed")
    parser.add_argument("--batch", type=int, default=50_000, help="scripts sent through the batch API")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--profile", type=int, default=0, help="profile N single uploads in process instead")
    parser.add_argument("--conn-max-age", type=int, default=None, help="PORTAL_CONN_MAX_AGE (default: run.py's 60)")
    parser.add_argument(
        "--client",
        choices=("wrk", "socket", "requests"),
        default="wrk" if shutil.which("wrk") else "socket",
        help="the single path's load tool, 4 threads: wrk with uploads.lua (Debian's wrk; the default when "
        "installed), bare sockets (the default otherwise) or requests sessions (the first figures)",
    )
    args = parser.parse_args(argv)

    database = args.portal_db.rsplit("/", 1)[1]
    subprocess.run(["mysql", "-h127.0.0.1", "-uroot", "-e", f"CREATE DATABASE IF NOT EXISTS {database}"], check=True)
    page_args = argparse.Namespace(
        portal_db=args.portal_db,
        prometheus="http://127.0.0.1:9",
        cache=args.cache,
        slurm_db=args.slurmdb.rsplit("/", 1)[1],
        metrics_redis=METRICS_REDIS,
    )
    env = {**bench_env(page_args), "SLURMDB_URL": args.slurmdb, "SLURM_CLUSTERS": args.cluster}
    if args.conn_max_age is not None:  # run.py's bench_env keeps connections 60 s; the README's default is 0
        env["PORTAL_CONN_MAX_AGE"] = str(args.conn_max_age)
    setup_django(env)
    token = token_and_cleanup()
    if args.profile:
        profile(token, args.profile)
        return 0
    first = int(time.time()) % 100_000 * 1000 + 30_000_000  # ids no earlier run used
    now = int(time.time())
    scripts = [
        {"id_job": first + 5_000_000 + i, "submit_script": SCRIPT, "time_submit": now - 5} for i in range(args.batch)
    ]
    batches = [{"scripts": scripts[i : i + args.batch_size]} for i in range(0, len(scripts), args.batch_size)]
    server = start(env, args.workers)
    try:
        workers = workers_of(server.pid)
        # Warm-up, bounded in count whatever the client: each worker's first request imports the
        # URL conf and the views (seconds on a busy machine), then connections and the token.
        load_socket(token, [{"id_job": first + i, "submit_script": SCRIPT} for i in range(200)], "/api/jobscripts/", 4)
        load_before = os.getloadavg()
        cpu, own = cpu_seconds(workers), client_cpu()
        timed, rate, p50, p99 = single(args, token, first + 1_000_000, args.single - 200, args.seconds)
        single_cpu = (cpu_seconds(workers) - cpu) / timed * 1000
        client_ms = (client_cpu() - own) / timed * 1000
        cpu = cpu_seconds(workers)
        batch_rate, batch_latencies = load(token, batches, "/api/jobscripts/batch/", 2) if batches else (0.0, [0.0])
        batch_cpu = (cpu_seconds(workers) - cpu) / max(len(scripts), 1) * 1000
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"single (TT API, 4 threads, {timed} uploads, client {args.client}): {rate:.0f} requests/s, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, workers' CPU {single_cpu:.2f} ms per upload, "
        f"the client's own CPU {client_ms:.2f} ms per upload (TT: 311/s)"
    )
    print(
        f"batch ({len(scripts)} scripts in requests of {args.batch_size}, 2 threads): "
        f"{batch_rate * args.batch_size:.0f} scripts/s, p50 {percentile(batch_latencies, 0.5):.0f} ms, "
        f"p99 {percentile(batch_latencies, 0.99):.0f} ms per request, workers' CPU {batch_cpu * 1000:.0f} µs per script"
    )
    print(
        f"load average before {' '.join(f'{x:.2f}' for x in load_before)}, after {' '.join(f'{x:.2f}' for x in load_after)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
