"""schemathesis against the portal's OpenAPI schema, served by Apache in the stack.

Authenticated as a cluster user and as staff (Shibboleth-style headers) and as the job-script
uploader's service account (an API token): no 5xx answer, and no answer outside the schema.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

ROOT = Path(__file__).resolve().parents[2]
BASE = os.environ.get("PORTAL_STACK_URL", "http://127.0.0.1:8080")

USER = {"X-Test-Remote-User": "alice@example.org", "X-Test-Affiliation": "member@example.org"}
STAFF = {"X-Test-Remote-User": "staffer@example.org", "X-Test-Affiliation": "staff@example.org"}


def _service_token() -> str:
    """A token of a service account, created in the stack portal's own database."""
    stack_dir = Path(os.environ["PORTAL_STACK_DIR"])
    env = dict(os.environ)
    for line in (stack_dir / "etc" / "portal" / "daemon.env").read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value.strip("'\"")
    result = subprocess.run(
        [sys.executable, "manage.py", "create_service_account", "fuzz-uploader"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout.strip().split()[-1]


def load_schema(headers: dict[str, str]):
    """The schema as these headers' user gets it: each user sees only the operations they may call."""
    if not os.environ.get("PORTAL_STACK_DIR"):
        return None
    try:
        return schemathesis.openapi.from_url(f"{BASE}/api/schema/?format=json", headers=headers)
    except Exception:
        return None


schema = load_schema(USER)
staff_schema = load_schema(STAFF)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

if schema is None or staff_schema is None:

    def test_schema_is_served(stack_dir):
        pytest.fail(f"the stack serves no OpenAPI schema at {BASE}/api/schema/")

else:
    schema.config.base_url = BASE
    staff_schema.config.base_url = BASE

    @schema.parametrize()
    @FUZZ
    def test_api_as_a_user(case, stack_dir):
        case.call_and_validate(headers=USER, checks=CHECKS)

    @staff_schema.parametrize()
    @FUZZ
    def test_api_as_staff(case, stack_dir):
        case.call_and_validate(headers=STAFF, checks=CHECKS)

    @pytest.fixture(scope="module")
    def service_headers(stack_dir):
        return {"Authorization": f"Token {_service_token()}"}

    @staff_schema.parametrize()
    @FUZZ
    def test_api_as_the_uploader(case, service_headers):
        case.call_and_validate(headers=service_headers, checks=CHECKS)
