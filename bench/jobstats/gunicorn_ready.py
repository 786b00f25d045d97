"""gunicorn settings of the bench: each worker, once it has loaded the portal, leaves a file in
$BENCH_READY_DIR (run.py waits for one per worker instead of sending a request, which would warm
the worker that answers it)."""

import os
from pathlib import Path
from typing import Any


def post_worker_init(worker: Any) -> None:
    ready = os.environ.get("BENCH_READY_DIR")
    if ready:
        (Path(ready) / str(worker.pid)).touch()
