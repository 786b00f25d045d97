"""The Prometheus client against a small HTTP server on loopback (a fake boundary).

The real Prometheus is exercised by the integration tests against the stack.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from userportal.errors import PrometheusBadResponse, PrometheusUnavailable
from userportal.prometheus import PROMETHEUS_DOWN, MetricsSession, PrometheusClient
from userportal.windows import MAX_POINTS, Window


class FakePrometheus(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list[str] = []

    def do_GET(self):
        FakePrometheus.seen.append(self.path)
        path = re.sub(r"^http://[^/]+", "", self.path)  # as a proxy: the absolute URL
        if self.mode == "error":
            self._send(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
        elif self.mode == "garbage":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not json</html>")
        elif path.startswith("/api/v1/query_range"):
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
        elif path.startswith("/api/v1/query"):
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
        elif path == "/-/ready":
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


class CountingClient:
    """A client that fails with ``error`` (or answers nothing) and counts the calls."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls = 0

    def query(self, expr, *, at=None):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return []

    def query_range(self, expr, *, start, end, step=None):
        return self.query(expr)


def test_a_dead_prometheus_is_remembered_for_every_apps_next_session():
    dead = CountingClient(PrometheusUnavailable("refused"))
    with pytest.raises(PrometheusUnavailable):
        MetricsSession(dead).query("up")
    with pytest.raises(PrometheusUnavailable):
        MetricsSession(dead).query_range("up", Window.of(0, 60))  # another page, another app
    assert dead.calls == 1
    assert PROMETHEUS_DOWN.recent()


def test_a_session_stops_at_its_first_failure_but_a_bad_query_is_not_an_outage():
    bad = CountingClient(PrometheusBadResponse("parse error"))
    session = MetricsSession(bad)
    for _ in range(2):
        with pytest.raises(PrometheusBadResponse):
            session.query("up{")
    assert bad.calls == 1
    assert not PROMETHEUS_DOWN.recent()
    assert MetricsSession(CountingClient()).query("up") == []


def test_the_environments_proxy_is_used_unless_no_proxy_names_the_server(fake_prometheus, monkeypatch):
    """As requests did: HTTP_PROXY carries the queries (the absolute URL in the request line), NO_PROXY bypasses it."""
    monkeypatch.setenv("HTTP_PROXY", fake_prometheus)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    samples = PrometheusClient("http://prometheus.invalid:9090", timeout=0.5).query("up")
    assert samples[0].value == 3.25
    assert FakePrometheus.seen[-1].startswith("http://prometheus.invalid:9090/api/v1/query?query=up")
    monkeypatch.setenv("NO_PROXY", "prometheus.invalid")
    with pytest.raises(PrometheusUnavailable):
        PrometheusClient("http://prometheus.invalid:9090", timeout=0.5).query("up")
