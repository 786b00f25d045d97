"""A small HTTP server answering as Bugzilla 5's REST API does for ``GET /rest/bug/<id>``.

The shapes are Bugzilla's documented ones: a found bug is ``{"bugs": [{...}], "faults": []}``
(``include_fields`` honoured; flags as ``{"id", "name", "type_id", "status", "setter",
"creation_date", "modification_date"}``); an error is ``{"error": true, "code": N, "message": ...,
"documentation": ...}`` with HTTP 404 for code 101 (no such bug), 401 for 102 (not authorized)
and 400 for 306 (an invalid API key, sent in ``X-BUGZILLA-API-KEY``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DOCS = "https://bugzilla.readthedocs.org/en/5.0/api/"


def bug(number: int, **fields: Any) -> dict[str, Any]:
    values = {
        "id": number,
        "summary": f"GPU priority for the thesis ({number})",
        "status": "CONFIRMED",
        "resolution": "",
        "is_open": True,
        "product": "HPC",
        "component": "GPU priority",
        "creator": "alice@example.org",
        "flags": [],
    }
    values.update(fields)
    return values


def flag(name: str, status: str, setter: str, when: str = "2026-01-02T10:00:00Z") -> dict[str, Any]:
    return {
        "id": 7, "name": name, "type_id": 3, "status": status, "setter": setter,
        "creation_date": "2026-01-01T09:00:00Z", "modification_date": when,
    }  # fmt: skip


class FakeBugzilla:
    def __init__(self, api_key: str = "") -> None:
        self.bugs: dict[int, dict[str, Any]] = {}
        self.private: set[int] = set()
        self.api_key = api_key
        self.delay = 0.0
        self.broken = False  # answer HTML, as a proxy's error page would
        self.requests: list[tuple[str, dict[str, str]]] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeBugzilla:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        parts = urlsplit(path)
        self.requests.append((path, headers))
        match = re.fullmatch(r"/rest/bug/(\d+)", parts.path)
        if not match:
            return 404, {
                "error": True,
                "code": 32614,
                "message": "A REST API resource was not found",
                "documentation": DOCS,
            }
        if self.api_key and headers.get("x-bugzilla-api-key") != self.api_key:
            return 400, {
                "error": True,
                "code": 306,
                "message": "The API key you specified is invalid.",
                "documentation": DOCS,
            }
        number = int(match.group(1))
        if number in self.private:
            message = f"You are not authorized to access bug #{number}."
            return 401, {"error": True, "code": 102, "message": message, "documentation": DOCS}
        if number not in self.bugs:
            return 404, {"error": True, "code": 101, "message": f"Bug #{number} does not exist.", "documentation": DOCS}
        found = self.bugs[number]
        fields = parse_qs(parts.query).get("include_fields", [""])[0]
        if fields:
            wanted = set(fields.split(","))
            found = {key: value for key, value in found.items() if key in wanted}
        return 200, {"bugs": [found], "faults": []}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if fake.delay:
                    time.sleep(fake.delay)
                status, body = fake.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
                data = b"<html>Bad gateway</html>" if fake.broken else json.dumps(body).encode()
                self.send_response(502 if fake.broken else status)
                self.send_header("Content-Type", "text/html" if fake.broken else "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
