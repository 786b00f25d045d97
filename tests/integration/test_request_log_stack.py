"""The stack's Apache writes the portal's log to log/portal-apache.log (PORTAL_LOG_FILE), with one
timing line per request: method, path, status, duration, user, client address."""

from __future__ import annotations

import os
import re
import time
import uuid

import requests


def lines_with(path, marker: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in path.read_text().splitlines() if marker in line and "userportal.requests:" in line]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_each_request_through_apache_is_one_timed_line(stack_dir):
    apache = os.environ["PORTAL_STACK_URL"]
    log = stack_dir / "log" / "portal-apache.log"
    marker = uuid.uuid4().hex[:12]
    assert requests.get(f"{apache}/no-such-page-{marker}/?token=secret-{marker}", timeout=30).status_code == 404
    signed_in = requests.get(
        f"{apache}/secure/no-such-page-{marker}/",
        headers={"X-Test-Remote-User": "alice@example.org", "X-Test-Affiliation": "member@example.org"},
        timeout=30,
    )
    assert signed_in.status_code == 404
    [anonymous] = lines_with(log, f" /no-such-page-{marker}/")
    assert re.search(
        rf"INFO userportal\.requests: GET /no-such-page-{marker}/ 404 \d+\.\dms user=- ip=127\.0\.0\.1$", anonymous
    )
    [alice] = lines_with(log, f"/secure/no-such-page-{marker}/")
    assert re.search(rf"GET /secure/no-such-page-{marker}/ 404 \d+\.\dms user=alice ip=127\.0\.0\.1$", alice)
    assert f"secret-{marker}" not in log.read_text()  # query strings are never logged
