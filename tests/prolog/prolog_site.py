"""Helpers for the uploader tests: a fake portal on loopback, and a site to run the uploader as Slurm would.

The uploader is built as a site builds it (one zipapp file, `make prolog`'s command) and runs as a
subprocess of /usr/bin/python3 (the system interpreter it is written for), with a spool laid out
like slurmctld's StateSaveLocation under tmp_path.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "slurm_prolog" / "userportal_prolog"  # the zipapp's tree: __main__.py and its modules
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
TOKEN = "k" * 44
DUPLICATE = b'{"id_job":["job script with this id job already exists."]}'


@functools.cache
def uploader() -> Path:
    """slurm_prolog_userportal.pyz, built once per test run with the Makefile's command."""
    directory = Path(tempfile.mkdtemp(prefix="prolog-pyz-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    target = directory / "slurm_prolog_userportal.pyz"
    subprocess.run([PYTHON, "-m", "zipapp", str(SOURCE), "-p", "/usr/bin/python3", "-o", str(target)], check=True)
    return target


def run_uploader(python: str | Path, *args: str, env: dict[str, str], timeout: float = 20):
    """The built uploader run by `python` with `args` (no shell), its output captured as text."""
    return subprocess.run(
        [str(python), str(uploader()), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class FakePortal:
    """Answers POST /api/jobscripts/ like the portal: 201, 400 for a duplicate, or `mode`'s answer."""

    mode: str = "ok"  # ok | duplicate | 401 | 500 | hang | bad-request | batch-400 (the batch endpoint refuses)
    received: list[dict] = field(default_factory=list)
    batches: list[list[dict]] = field(default_factory=list)  # POST /api/jobscripts/batch/: its scripts
    headers: list[dict] = field(default_factory=list)
    stored: set[int] = field(default_factory=set)
    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)

    def ids(self) -> list[int]:
        return [body["id_job"] for body in self.received]


def _handler(portal: FakePortal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            if portal.mode == "hang":
                portal.release.wait(15)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/api/jobscripts/batch/":
                return self._batch(body)
            portal.received.append(body)
            portal.headers.append(dict(self.headers))
            if self.path != "/api/jobscripts/":
                return self._answer(404, b'{"detail":"Not found."}')
            if portal.mode == "401" or self.headers.get("Authorization") != f"Token {TOKEN}":
                return self._answer(401, b'{"detail":"Invalid token."}')
            if portal.mode == "500":
                return self._answer(500, b'{"detail":"boom"}')
            if portal.mode == "bad-request":
                return self._answer(400, b'{"submit_script":["This field may not be blank."]}')
            if portal.mode == "duplicate" or body["id_job"] in portal.stored:
                return self._answer(400, DUPLICATE)
            portal.stored.add(body["id_job"])
            return self._answer(201, json.dumps(body).encode())

        def _batch(self, body: dict) -> None:
            if self.headers.get("Authorization") != f"Token {TOKEN}" or portal.mode == "401":
                return self._answer(401, b'{"detail":"Invalid token."}')
            if portal.mode in ("500", "batch-400"):
                return self._answer(500 if portal.mode == "500" else 400, b'{"scripts":["no"]}')
            portal.batches.append(body["scripts"])
            fresh = [item["id_job"] for item in body["scripts"] if item["id_job"] not in portal.stored]
            portal.stored.update(fresh)
            rejected = (
                [{"index": 0, "id_job": 0, "errors": {"id_job": ["bad"]}}] if portal.mode == "bad-request" else []
            )
            answer = {"stored": len(fresh), "duplicates": len(body["scripts"]) - len(fresh), "rejected": rejected}
            return self._answer(200, json.dumps(answer).encode())

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@dataclass
class Site:
    """The uploader's world: ini, slurmctld spool, queue directory."""

    root: Path
    host: str
    timeout: float = 2.0
    backoff: float = 0.0
    cluster: str = "testcluster"
    token: str = TOKEN
    ini_mode: int = 0o600  # it holds the token: the uploader refuses a world-readable file
    api_extra: str = ""  # more lines of [api]

    @property
    def spool(self) -> Path:
        return self.root / "slurmctld"

    @property
    def slurmd_spool(self) -> Path:
        return self.root / "slurmd"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def ini(self) -> Path:
        path = self.root / "userportal-prolog.ini"
        path.write_text(
            f"[api]\nhost = {self.host}\ntoken = {self.token}\nscript_length = 100000\ntimeout = {self.timeout}\n"
            f"{self.api_extra}"
            f"[slurm]\nspool = {self.spool}\nslurmd_spool = {self.slurmd_spool}\ncluster = {self.cluster}\n"
            f"[queue]\ndir = {self.queue}\nmax_files = 100\nbackoff = {self.backoff}\n"
            f"[daemon]\ninterval = 0.2\nretry_interval = 0.5\n"
        )
        path.chmod(self.ini_mode)
        return path

    def submit(self, job_id: int, script: str | bytes = "#!/bin/bash\nsleep 1\n", age: float = 10.0) -> Path:
        """Spool a job's script as slurmctld does (hash.<id%10>/job.<id>/script), `age` seconds old."""
        directory = self.spool / f"hash.{job_id % 10}" / f"job.{job_id}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "script"
        path.write_bytes(script if isinstance(script, bytes) else script.encode())
        (directory / "environment").write_bytes(b"PATH=/usr/bin\x00")
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
        return path

    def queued(self) -> list[int]:
        return sorted(int(p.name.split(".")[1]) for p in self.queue.glob("job.*.json"))

    def env(self, job_id: int | None, **extra: str) -> dict[str, str]:
        env = {"SLURM_SCRIPT_CONTEXT": "prolog_slurmctld", **extra}  # no PATH: Slurm gives prologs none
        if job_id is not None:
            env["SLURM_JOB_ID"] = str(job_id)
        return env

    def run(self, job_id: int | None = None, *args: str, env: dict[str, str] | None = None, timeout: float = 20):
        """Run the uploader as PrologSlurmctld would; return (CompletedProcess, seconds it took)."""
        start = time.monotonic()
        result = run_uploader(
            PYTHON, "--config", str(self.ini), "--stderr", *args, env=env if env is not None else self.env(job_id),
            timeout=timeout,
        )  # fmt: skip
        return result, time.monotonic() - start

    def daemon(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [PYTHON, str(uploader()), "--config", str(self.ini), "--stderr", "--daemon", *args],
            env={},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def serve(portal: FakePortal, address: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve `portal` on a free port of `address` (loopback by default, in a thread); sets portal.url."""
    server = ThreadingHTTPServer((address, 0), _handler(portal))
    server.daemon_threads = True
    portal.url = f"http://{address}:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
