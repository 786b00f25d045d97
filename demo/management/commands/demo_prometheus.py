"""``manage.py demo_prometheus``: the demo's Prometheus for ``make run`` (demo/prometheus.py), until stopped."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.prometheus import DemoPrometheus, PrometheusMissing
from slurm.models import default_cluster


class Command(BaseCommand):
    help = (
        "Start Debian's prometheus on 127.0.0.1:--port with the demo cluster's slurm-job-exporter series: the "
        "last --hours backfilled, then the running jobs' live values served on 127.0.0.1:--exporter-port and "
        "scraped every 30 s. Runs until interrupted (SIGINT or SIGTERM), then stops Prometheus."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=9091, help="Prometheus's port (default 9091).")
        parser.add_argument("--exporter-port", type=int, default=9799, help="The live exporter's (default 9799).")
        parser.add_argument("--hours", type=float, default=1.0, help="History to backfill (default 1 hour).")
        parser.add_argument("--dir", default=str(Path(settings.VAR_DIR) / "prometheus"), help="Data directory.")
        parser.add_argument("--cluster", default=None, help="Cluster name (default: the first of SLURM_CLUSTERS).")

    def handle(self, *args: Any, **options: Any) -> None:
        demo = DemoPrometheus(Path(options["dir"]), options["port"], options["exporter_port"])
        stopped = threading.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            stopped.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            counts = demo.start(options["cluster"] or default_cluster(), options["hours"])
        except PrometheusMissing as exc:
            raise CommandError(str(exc)) from exc
        try:
            self.stdout.write(f"demo Prometheus ready on {demo.url}: {json.dumps(counts)}")
            self.stdout.flush()
            stopped.wait()
        finally:
            demo.stop()
