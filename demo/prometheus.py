"""The demo's Prometheus: Debian's prometheus loaded with the demo cluster's exporter series.

``DemoPrometheus(directory, port, exporter_port).start(cluster, hours)`` backfills the last
``hours`` of the demo's jobs (``promtool tsdb create-blocks-from openmetrics``), serves the
running jobs' current values on 127.0.0.1:``exporter_port`` (a thread, as slurm-job-exporter
would on their nodes) and starts Prometheus on 127.0.0.1:``port``, which scrapes that endpoint
every 30 s and evaluates the stack's recording rules. Used by ``manage.py demo_prometheus`` (make
run, through scripts/demo-prometheus) and by the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.conf import settings

from demo.metrics import DemoJob, backfill, demo_jobs, live

RULES = Path(settings.BASE_DIR) / "scripts" / "stack.d" / "rules.yml"
STEP = 60  # seconds between backfilled samples: two in the portal's default 2-minute rate window
SCRAPE = 30  # as slurm-job-exporter is scraped


class PrometheusMissing(RuntimeError):
    """Debian's prometheus package (prometheus, promtool) is not installed."""


def binaries() -> tuple[str, str]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        raise PrometheusMissing("prometheus and promtool (Debian's prometheus package) are not installed")
    return prometheus, promtool


class LiveExporter(ThreadingHTTPServer):
    """/metrics: the running jobs' series at the time of the scrape."""

    daemon_threads = True

    def __init__(self, port: int, jobs: list[DemoJob], since: int) -> None:
        self.jobs, self.since = jobs, since
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: LiveExporter

    def do_GET(self) -> None:
        body = live(self.server.jobs, self.server.since, int(time.time())).encode()
        self.send_response(200 if self.path.startswith("/metrics") else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def wait_http(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a loopback URL built here
                return True
        except OSError:
            time.sleep(0.1)
    return False


class DemoPrometheus:
    def __init__(self, directory: Path, port: int, exporter_port: int) -> None:
        self.directory, self.port, self.exporter_port = directory, port, exporter_port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.exporter: LiveExporter | None = None

    def config(self) -> Path:
        path = self.directory / "prometheus.yml"
        path.write_text(
            "# Written by demo/prometheus.py.\n"
            f"global:\n  scrape_interval: {SCRAPE}s\n  evaluation_interval: {SCRAPE}s\n"
            f"rule_files:\n  - {RULES}\n"
            "scrape_configs:\n  - job_name: slurm-job-exporter\n    honor_labels: true\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{self.exporter_port}']\n"
        )
        return path

    def start(self, cluster: str, hours: float) -> dict[str, int]:
        """Backfill, start the exporter thread and Prometheus; returns the backfill's counts."""
        prometheus, promtool = binaries()
        data = self.directory / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        now = int(time.time())
        since = now - int(hours * 3600)
        self.exporter = LiveExporter(
            self.exporter_port, [j for j in demo_jobs(cluster, now, since) if not j.end], since
        )
        threading.Thread(target=self.exporter.serve_forever, daemon=True).start()
        history = self.directory / "backfill.om"
        counts = backfill(cluster, str(history), now, since, STEP)
        subprocess.run(  # noqa: S603 - promtool from PATH, arguments built here
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(history), str(data)],
            check=True,
            capture_output=True,
        )
        history.unlink()
        log = (self.directory / "prometheus.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [
                prometheus,
                f"--config.file={self.config()}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=30d",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if not wait_http(f"{self.url}/-/ready", 60):
            self.stop()
            raise RuntimeError(f"prometheus did not start ({self.directory / 'prometheus.log'})")
        return counts

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        if self.exporter is not None:
            self.exporter.shutdown()
            self.exporter.server_close()
            self.exporter = None
