"""The login nodes' jobstats command (jobstats_cli/userportal_jobstats.py) against a fake portal on loopback.

It runs as a user runs it: a subprocess of Python 3.11 (the system's) and of Python 3.6 (the oldest
clusters', pyenv's; required under CI=true), with a HOME of its own under tmp_path.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from skipping import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
COMMAND = ROOT / "jobstats_cli" / "userportal_jobstats.py"
PY36 = Path.home() / ".pyenv" / "versions" / "3.6.15" / "bin" / "python"
PY311 = Path("/usr/bin/python3") if Path("/usr/bin/python3").exists() else Path("python3")
KEY = "k" * 43 + "Z"

ANSWER = {
    "id_job": 4242,
    "display_id": "4242",
    "name": "train",
    "user": "alice",
    "account": "def-alice",
    "partition": "cpubase",
    "state": "COMPLETED",
    "state_label": "Completed",
    "exit_code": "0:0",
    "submit": "2026-12-01T10:00:00Z",
    "start": "2026-12-01T10:01:00Z",
    "end": "2026-12-01T12:01:00Z",
    "elapsed": "2:00:00",
    "timelimit": "4:00:00",
    "nodelist": "node[1-2]",
    "resources": {"cpus": 8, "memory_mb": 16000, "gpus": 0, "nodes": 2},
    "efficiency": {
        "source": "accounting",
        "source_label": "from Slurm's accounting (the job's steps)",
        "running": False,
        "measures": [
            {"kind": "cpu", "title": "CPU", "percent": 12, "fraction": 0.12, "used": "1:55:12 of CPU time",
             "requested": "8 cores × 2:00:00", "verdict": "poor", "verdict_label": "poor",
             "sentence": "The job used about one core of the 8 it asked for: it looks serial."},
            {"kind": "memory", "title": "Memory", "percent": 6, "fraction": 0.06, "used": "0.9 GiB",
             "requested": "15.6 GiB", "verdict": "poor", "verdict_label": "poor",
             "sentence": "The job used less than a tenth of its memory: ask for much less next time."},
        ],
        "waste": {"core_hours": 14.1, "gpu_hours": 0.0, "memory_gib_hours": 29.4, "cost": 0.42, "currency": "CAD"},
        "notes": [],
    },
    "usage": {"source": "accounting", "cpu_seconds": 6912.0, "cores_used": 0.96, "mem_max_bytes": 966367641.6,
              "gpus_seen": None, "gpu_util": None, "gpu_type": None, "threads_running": None,
              "programs": [{"name": "python", "cores": 0.95}]},
    "metrics_notice": "",
    "advice": [{"rule": "serial-job", "severity": "warning", "severity_label": "Warning",
                "message": "This job ran on one core of the 8 it asked for.", "doc_url": "https://docs.example/#serial",
                "line": 7}],
    "pending": None,
    "url": "http://portal.example/secure/jobstats/alice/4242/",
}  # fmt: skip


@dataclass
class FakePortal:
    """Answers GET /api/jobstats/<id>/ like the portal (ANSWER for job 4242), or `mode`'s answer."""

    mode: str = "ok"  # ok | 401 | 500 | redirect | hang | html | hostile
    requests: list[dict] = field(default_factory=list)
    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)


def _handler(portal: FakePortal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            portal.requests.append({"path": self.path, **dict(self.headers)})
            if portal.mode == "hang":
                portal.release.wait(15)
                return
            if portal.mode == "redirect":
                return self._answer(302, b"", location="http://127.0.0.1:9/elsewhere/")
            if portal.mode == "hostile":
                return self._answer(404, json.dumps({"detail": "No such job\x1b]52;c;x\x07"}).encode())
            if portal.mode == "html":
                return self._answer(200, b"<html>a login page</html>", content_type="text/html")
            if self.headers.get("Authorization") != f"Token {KEY}" or portal.mode == "401":
                return self._answer(401, b'{"detail":"Invalid token."}')
            if portal.mode == "500":
                return self._answer(500, b'{"detail":"boom"}')
            if not self.path.startswith("/api/jobstats/4242/"):
                return self._answer(404, b'{"detail":"No such job for this user."}')
            return self._answer(200, json.dumps(ANSWER).encode())

        def _answer(self, status, body, content_type="application/json", location=""):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def portal():
    fake = FakePortal()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["3.11", "3.6"])
def python(request) -> Path:
    if request.param == "3.6":
        if not PY36.exists():
            skip_or_fail(f"no Python 3.6 at {PY36}: scripts/python36 builds it")
        return PY36
    return PY311


@dataclass
class User:
    """A login-node user: a HOME with the token file, the site ini, and the environment."""

    home: Path
    python: Path
    site_ini: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def token_file(self) -> Path:
        return self.home / ".config" / "userportal" / "token"

    def store(self, key: str = KEY, mode: int = 0o600) -> None:
        self.token_file.parent.mkdir(parents=True, exist_ok=True)
        self.token_file.write_text(key + "\n")
        self.token_file.chmod(mode)

    def site(self, text: str) -> None:
        self.site_ini.write_text(text)

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        env = {"HOME": str(self.home), "USERPORTAL_JOBSTATS_CONFIG": str(self.site_ini), **self.env}
        return subprocess.run(
            [str(self.python), str(COMMAND), *args], env=env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip


@pytest.fixture
def user(tmp_path, python, portal) -> User:
    person = User(home=tmp_path / "home", python=python, site_ini=tmp_path / "jobstats.ini")
    person.home.mkdir()
    person.site(f"[portal]\nurl = {portal.url}\n")
    person.store()
    return person


def test_it_prints_the_jobs_efficiency_figures_and_advice(user, portal):
    user.env["LANG"] = "fr_CA.UTF-8"
    result = user.run("4242")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Job 4242 (train) - Completed\n")
    assert "CPU      [##..................]   12%  poor" in out
    assert "1:55:12 of CPU time / 8 cores × 2:00:00" in out
    assert "it looks serial" in out
    assert "Submitted 2026-12-01 10:00 UTC, started 2026-12-01 10:01 UTC" in out
    assert "Requested but unused: 14.1 core-hours, 29 GiB-hours of memory; about 0.42 CAD" in out
    assert "Programs (average cores): python 0.95" in out
    assert "[Warning] This job ran on one core of the 8 it asked for. (line 7)" in out
    assert "https://docs.example/#serial" in out
    assert out.rstrip().endswith("Page: http://portal.example/secure/jobstats/alice/4242/")
    sent = portal.requests[0]
    assert sent["path"] == "/api/jobstats/4242/"
    assert sent["Authorization"] == f"Token {KEY}"
    assert sent["Accept-Language"] == "fr-CA, fr;q=0.9"


def test_json_prints_the_portals_answer(user, portal):
    result = user.run("--json", "4242")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ANSWER


def test_an_array_task_and_a_staff_user_are_passed_on(user, portal):
    result = user.run("4242_3", "--user", "bob")
    assert result.returncode == 5
    assert portal.requests[0]["path"] == "/api/jobstats/4242_3/?user=bob"


def test_url_option_and_environment_come_before_the_site_file(user, portal):
    user.site("[portal]\nurl = https://wrong.example\n")
    assert user.run("4242", "--url", portal.url).returncode == 0
    user.env["USERPORTAL_URL"] = portal.url + "/"
    assert user.run("4242").returncode == 0


def test_without_a_portal_address_it_says_where_to_set_one(user):
    user.site("")
    result = user.run("4242")
    assert result.returncode == 3
    assert "--url" in result.stderr
    assert "/etc/userportal/jobstats.ini" in result.stderr


def test_without_a_token_it_says_where_to_create_one(user, portal):
    user.token_file.unlink()
    result = user.run("4242")
    assert result.returncode == 3
    assert f"{portal.url}/secure/jobstats-command/" in result.stderr
    assert portal.requests == []


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_token_file_others_can_read_is_refused_before_sending_it(user, portal, mode):
    user.store(mode=mode)
    result = user.run("4242")
    assert result.returncode == 3
    assert "can be read by others" in result.stderr
    assert "chmod 600" in result.stderr
    assert portal.requests == []


def test_a_symlinked_or_empty_token_file_is_refused(user, portal, tmp_path):
    user.store("   ")
    assert user.run("4242").returncode == 3
    real = tmp_path / "elsewhere"
    real.write_text(KEY)
    real.chmod(0o600)
    user.token_file.unlink()
    user.token_file.symlink_to(real)
    assert user.run("4242").returncode == 3
    assert portal.requests == []


def test_a_token_file_option_is_read(user, portal, tmp_path):
    other = tmp_path / "my-token"
    other.write_text(KEY)
    other.chmod(0o400)
    user.token_file.unlink()
    assert user.run("4242", "--token-file", str(other)).returncode == 0


@pytest.mark.parametrize(
    ("mode", "job", "code", "words"),
    [
        ("401", "4242", 4, "refused your token (Invalid token.)"),
        ("ok", "777", 5, "no job 777 of yours"),
        ("500", "4242", 6, "failed (HTTP 500) (boom)"),
        ("html", "4242", 6, "is not a job's figures"),
        ("redirect", "4242", 3, "redirects to http://127.0.0.1:9/elsewhere/"),
    ],
)
def test_the_portals_refusals_and_failures_are_clear_errors(user, portal, mode, job, code, words):
    portal.mode = mode
    result = user.run(job)
    assert result.returncode == code, result.stderr
    assert words in result.stderr
    assert result.stdout == ""
    assert len(portal.requests) == 1  # a redirect is not followed (it would carry the token)


def test_a_portal_that_is_down_or_too_slow_is_exit_6(user, portal):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = user.run("4242", "--url", dead)
    assert result.returncode == 6
    assert "cannot reach the portal" in result.stderr
    portal.mode = "hang"
    user.site(f"[portal]\nurl = {portal.url}\ntimeout = 1\n")
    start = time.monotonic()
    result = user.run("4242")
    assert result.returncode == 6
    assert "did not answer within 1 s" in result.stderr
    assert time.monotonic() - start < 10


def test_plain_http_elsewhere_is_refused_unless_the_site_allows_it(user, portal):
    result = user.run("4242", "--url", "http://portal.example.org")
    assert result.returncode == 3
    assert "in clear" in result.stderr
    user.site(f"[portal]\nurl = {portal.url.replace('127.0.0.1', 'localhost')}\n")
    assert user.run("4242").returncode == 0


@pytest.mark.parametrize("job", ["abc", "12-14", "1,2", "1_", "-5"])
def test_a_bad_job_id_is_a_usage_error(user, portal, job):
    result = user.run("--", job)
    assert result.returncode == 2
    assert portal.requests == []


def test_a_terminal_without_utf8_still_gets_the_text(user, portal):
    user.env["LANG"] = "C"
    result = user.run("4242")
    assert result.returncode == 0, result.stderr
    assert "8 cores" in result.stdout
    assert "Accept-Language" not in portal.requests[0]


def test_it_is_one_file_that_runs_from_anywhere(user, portal, tmp_path):
    installed = tmp_path / "bin" / "jobstats"
    installed.parent.mkdir()
    installed.write_bytes(COMMAND.read_bytes())
    result = subprocess.run(
        [str(user.python), str(installed), "--help"], capture_output=True, text=True, timeout=20, check=False, cwd="/"
    )
    assert result.returncode == 0, result.stderr
    assert "--json" in result.stdout
    assert os.access(COMMAND, os.X_OK)
    assert COMMAND.read_text().startswith("#!/usr/bin/python3\n")


HOSTILE = "\x1b]52;c;cm0gLXJmIH4=\x07\x9b2J\x7f\rx\x08\n"  # OSC 52 (the clipboard), CSI (8-bit), DEL, CR, BS, LF


def test_control_characters_of_the_answer_never_reach_the_terminal(user, portal, monkeypatch):
    hostile = json.loads(json.dumps(ANSWER))
    hostile["name"] = "train" + HOSTILE
    hostile["nodelist"] = "node1" + HOSTILE
    hostile["usage"]["programs"][0]["name"] = "py" + HOSTILE
    hostile["advice"][0]["message"] = "Serial" + HOSTILE
    hostile["advice"][0]["doc_url"] = "https://docs.example/" + HOSTILE
    hostile["efficiency"]["measures"][0]["sentence"] = "It looks serial" + HOSTILE
    hostile["url"] = "http://portal.example/" + HOSTILE
    monkeypatch.setitem(globals(), "ANSWER", hostile)
    result = user.run("4242")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in out), repr(out)
    assert out.startswith("Job 4242 (train?]52;c;cm0gLXJmIH4=??2J??x??) - Completed\n")
    assert "node1?]52;" in out and "py?]52;" in out and "Serial?]52;" in out
    as_json = user.run("--json", "4242")
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in as_json.stdout)
    assert json.loads(as_json.stdout) == hostile  # --json keeps the data, escaped


def test_control_characters_of_an_error_never_reach_the_terminal(user, portal):
    portal.mode = "hostile"
    result = user.run("4242")
    assert result.returncode == 5
    assert "No such job?]52;c;x?" in result.stderr and "\x1b" not in result.stderr and "\x07" not in result.stderr
