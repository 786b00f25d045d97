"""The Prometheus client against a small HTTP server on loopback (a fake boundary).

The real Prometheus is exercised by the integration tests against the stack.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from userportal.errors import PrometheusBadResponse, PrometheusUnavailable
from userportal.prometheus import MAX_POINTS, PrometheusClient, step_for


class FakePrometheus(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list[str] = []

    def do_GET(self):
        FakePrometheus.seen.append(self.path)
        if self.mode == "error":
            self._send(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
        elif self.mode == "garbage":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not json</html>")
        elif self.path.startswith("/api/v1/query_range"):
            self._send(
                200,
                {
                    "status": "success",
                    "data": {
                        "resultType": "matrix",
                        "result": [{"metric": {"slurmjobid": "7"}, "values": [[1700000000, "1.5"], [1700000060, "2"]]}],
                    },
                },
            )
        elif self.path.startswith("/api/v1/query"):
            self._send(
                200,
                {
                    "status": "success",
                    "data": {
                        "resultType": "vector",
                        "result": [{"metric": {"user": "alice"}, "value": [1700000000, "3.25"]}],
                    },
                },
            )
        elif self.path == "/-/ready":
            self._send(200, {})

    def _send(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_prometheus():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakePrometheus.mode = "ok"
    FakePrometheus.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_instant_query_returns_samples(fake_prometheus):
    samples = PrometheusClient(fake_prometheus).query('up{user="alice"}')
    assert samples[0].labels == {"user": "alice"}
    assert samples[0].value == 3.25


def test_range_query_returns_series_with_a_bounded_step(fake_prometheus):
    end = datetime(2026, 11, 22, tzinfo=UTC)
    series = PrometheusClient(fake_prometheus).query_range("up", start=end - timedelta(days=30), end=end)
    assert series[0].values == [1.5, 2.0]
    step = int(FakePrometheus.seen[-1].split("step=")[1].split("s")[0])
    assert (30 * 86400) / step <= MAX_POINTS


def test_a_bad_query_is_a_bad_response(fake_prometheus):
    FakePrometheus.mode = "error"
    with pytest.raises(PrometheusBadResponse):
        PrometheusClient(fake_prometheus).query("up{")


def test_a_non_json_answer_is_a_bad_response(fake_prometheus):
    FakePrometheus.mode = "garbage"
    with pytest.raises(PrometheusBadResponse):
        PrometheusClient(fake_prometheus).query("up")


def test_nobody_listening_is_unavailable_quickly():
    client = PrometheusClient("http://127.0.0.1:9", timeout=0.5)
    started = datetime.now(tz=UTC)
    with pytest.raises(PrometheusUnavailable):
        client.query("up")
    assert (datetime.now(tz=UTC) - started).total_seconds() < 5
    assert client.ready() is False


def test_step_keeps_series_under_the_point_budget():
    assert step_for(0, 3600, minimum=30) == 30
    assert 180 * 86400 / step_for(0, 180 * 86400) <= MAX_POINTS
