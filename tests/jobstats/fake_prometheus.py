"""A small Prometheus HTTP API on loopback that answers jobstats' queries with realistic series.

It does not evaluate PromQL. jobstats sends each graph as a union of tagged expressions
(``label_replace(<expr>, "portal_series", "<tag>", "", "")``, see userportal.promql);
the fake answers every tag with the label sets its ``by (...)`` clause and selectors imply
(job ids, instances, GPUs, thread states, executables, devices...) and values of the size
slurm-job-exporter, node_exporter, lustre_exporter and redfish give for a 4-core, 1-GPU job.

Run it beside the demo server to see graphs: ``.venv/bin/python tests/jobstats/fake_prometheus.py 9191``
and start the portal with ``PROMETHEUS_URL=http://127.0.0.1:9191``.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

GIB = 1024**3

# Typical values per tag (after the expression's own arithmetic), as jobstats names its tags.
TAG_VALUES = {
    # job graphs
    "used": 3.2,
    "alloc": 4.0,
    "limit": 8 * GIB,
    "usage": 3 * GIB,
    "max": 3.5 * GIB,
    "rss": 2.6 * GIB,
    "cache": 0.4 * GIB,
    "rss_huge": 0.1 * GIB,
    "mapped_file": 0.05 * GIB,
    "active_file": 0.2 * GIB,
    "inactive_file": 0.2 * GIB,
    "unevictable": 0.0,
    "processes": 5,
    "threads": 4,
    "exe": 1.6,
    "slurm_job_utilization_gpu": 64.0,
    "slurm_job_sm_occupancy_gpu": 31.0,
    "slurm_job_tensor_gpu": 12.0,
    "slurm_job_fp64_gpu": 2.0,
    "slurm_job_fp32_gpu": 40.0,
    "slurm_job_fp16_gpu": 8.0,
    "slurm_job_utilization_gpu_memory": 35.0,
    "slurm_job_memory_usage_gpu": 21 * GIB,
    "slurm_job_power_gpu": 245_000.0,
    "slurm_job_pcie_gpu": 4e9,
    "slurm_job_nvlink_gpu": 2e10,
    "in": 2.5e7,
    "out": 1.2e7,
    "size": 800e9,
    "ops": 120.0,
    "read": 60 * 1024**2,
    "write": 25 * 1024**2,
    "chassis": 610.0,
    "cores": 64.0,
    "node_gpu_w": 980.0,
    "node_gpus": 4.0,
    "job_gpu_w": 245.0,
    # user graphs and the current-use summary
    "cores_used": 10.4,
    "cores_alloc": 16.0,
    "mem_alloc": 64 * GIB,
    "mem_max": 21 * GIB,
    "mem_rss": 15 * GIB,
    "gpus_alloc": 2.0,
    "gpus_used": 1.3,
    "count": 2.0,
    "hour_cores": 10.4,
    "hour_mem_max": 21 * GIB,
    "hour_mem_usage": 19 * GIB,
    "seen": 16.0,
    "hour_gpus": 1.3,
    "gpus": 1.0,
    # a job's usage (instant query)
    "u_cpu": 3.1 * 3600,  # CPU seconds: the core counters' growth
    "u_cpu_at": 0.0,  # the counters' last sample (0: unknown, the whole span counts)
    "u_seen": 4.0,
    "u_mem_max": 3.4 * GIB,
    "u_mem_usage": 3.1 * GIB,
    "u_gpu_util": 61.0,
    "u_gpus": 1.0,
    "u_gpu_type": 1.0,
    "u_gpu_mem": 0.52,
    "u_gpu_power": 245.0,
    "u_threads": 4.2,
    "u_programs": 2.9,
}
# The instant "used" tag of the usage query is cores_used; the range "used" of the user GPU
# power graph is watts: told apart by the expression.
LABEL_VALUES = {
    "instance": ["cn0001:9798"],
    "gpu": ["0"],
    "gpu_type": ["NVIDIA A100-SXM4-40GB"],
    "state": ["running", "sleeping"],
    "exe": ["/usr/bin/python3.11", "/opt/software/gromacs/bin/gmx_mpi"],
    "device": ["eth0", "ib0", "lo", "nvme0n1", "sda1"],
    "fs": ["lustre05"],
    "operation": ["open", "close", "getattr"],
    "direction": ["RX", "TX"],
    "mode": ["idle"],
    "user": ["alice"],
}
TAGGED = re.compile(r'"portal_series", "([^"]+)", "", ""\)')
BY = re.compile(r"by \(([^)]*)\)")
MATCHER = re.compile(r'(\w+)(=~|=)"((?:[^"\\]|\\.)*)"')


class FakePrometheus(BaseHTTPRequestHandler):
    mode = "ok"  # ok, empty (no series), down (503), error (400), garbage (not JSON)
    seen: list[dict[str, str]] = []  # the parameters of every request
    lock = threading.Lock()

    def do_GET(self) -> None:
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with FakePrometheus.lock:
            FakePrometheus.seen.append({"path": url.path, **params})
        if url.path == "/-/ready":
            self._send(200, {})
        elif self.mode == "down":
            self._send(503, {"status": "error", "errorType": "unavailable", "error": "shutting down"})
        elif self.mode == "error":
            self._send(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
        elif self.mode == "garbage":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not json</html>")
        elif url.path == "/api/v1/query_range":
            self._send(200, {"status": "success", "data": {"resultType": "matrix", "result": answer(params, True)}})
        elif url.path == "/api/v1/query":
            self._send(200, {"status": "success", "data": {"resultType": "vector", "result": answer(params, False)}})
        else:
            self._send(404, {"status": "error", "error": "not found"})

    def _send(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def _parts(query: str) -> list[tuple[str, str]]:
    """(tag, expression) of each tagged part of a union."""
    found = []
    for piece in query.split(" or label_replace("):
        match = TAGGED.search(piece)
        if match:
            found.append((match.group(1), piece))
    return found


def _label_sets(expr: str) -> list[dict[str, str]]:
    selectors: dict[str, list[str]] = {}
    for name, op, value in MATCHER.findall(expr):
        values = value.replace("\\\\", "\\").split("|") if op == "=~" else [value]
        selectors.setdefault(name, []).extend(v.replace("\\", "") for v in values)
    by = BY.search(expr)
    names = [n.strip() for n in by.group(1).split(",")] if by else []
    sets: list[dict[str, str]] = [{}]
    for name in names:
        if name in ("slurmjobid", "jobid"):
            options = selectors.get("slurmjobid") or selectors.get("jobid") or ["1"]
        elif name == "instance" and "instance" in selectors:
            options = selectors["instance"]
        else:
            options = LABEL_VALUES.get(name, ["x"])
        sets = [{**current, name: option} for current in sets for option in dict.fromkeys(options)]
    return sets


def _value(tag: str, expr: str, labels: dict[str, str]) -> float:
    if tag == "used" and "slurm_job_power_gpu" in expr:
        return 490.0  # the user's GPUs, watts
    value = TAG_VALUES.get(tag, 1.0)
    if labels.get("state") == "sleeping":
        value /= 2
    return value


def answer(params: dict[str, str], ranged: bool) -> list[dict[str, object]]:
    query = params.get("query", "")
    parts = _parts(query)
    if FakePrometheus.mode == "empty":
        return []
    if not parts:
        value = [float(params.get("time", time.time())), "1"]
        return [{"metric": {}, "value": value}] if not ranged else []
    result: list[dict[str, object]] = []
    for tag, expr in parts:
        for labels in _label_sets(expr):
            metric = {**labels, "portal_series": tag}
            base = _value(tag, expr, labels)
            if ranged:
                start, end, step = float(params["start"]), float(params["end"]), float(params["step"].rstrip("s"))
                count = min(int((end - start) // step) + 1, 11_000)
                values = [[start + i * step, str(base * (1 + 0.1 * math.sin(i / 7)))] for i in range(count)]
                result.append({"metric": metric, "values": values})
            else:
                result.append({"metric": metric, "value": [float(params.get("time", time.time())), str(base)]})
    return result


def start(port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", port), FakePrometheus)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


if __name__ == "__main__":
    server, url = start(int(sys.argv[1]) if len(sys.argv) > 1 else 9191)
    print(f"fake Prometheus on {url}", flush=True)  # noqa: T201
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
