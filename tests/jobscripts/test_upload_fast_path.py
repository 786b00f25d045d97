"""The token upload's lean path (userportal.token_posts, third in MIDDLEWARE) answers exactly as the
whole stack does: the same status, body bytes and headers (the security headers, CSP,
X-Frame-Options, Content-Language, Vary, Content-Length), and leaves every other request to it.

Each case sends the same request twice: through the lean path, and with it switched off, where
the route's DRF view and every middleware answer (the whole stack).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes

import pytest
from django.conf import settings
from django.core import signals
from django.db import close_old_connections, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory

from jobstats import jobscripts
from jobstats.api_jobscripts import JobScriptList
from jobstats.models import JobScript
from userportal import metrics, metrics_store, token_posts
from userportal.token_posts import FIRST_SKIPPED, MIRRORED, NOTHING_TO_DO, TokenPostMiddleware

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

LIST = "/api/jobscripts/"
SCRIPT = "#!/bin/bash\n#SBATCH --array=0-9\nsrun ./task\n"
NOW = datetime(2026, 12, 7, 20, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def answers(service_account, monkeypatch):
    """answers(body, authorization=..., **extra): (lean answer, whole stack's answer, whether DRF stored anything for the lean one)."""
    monkeypatch.setattr(jobscripts.timezone, "now", lambda: NOW)  # received_at, in the body
    stored_by_drf = []
    create = JobScriptList.create
    monkeypatch.setattr(JobScriptList, "create", lambda self, *a, **k: stored_by_drf.append(1) or create(self, *a, **k))

    def client(authorization):
        client = service_account.client()
        if authorization:
            client.credentials(HTTP_AUTHORIZATION=authorization)
        return client

    def answers(body, *, forget: bool = True, authorization: str = "", **extra):
        before = len(stored_by_drf)
        lean = client(authorization).post(LIST, body, format="json", **extra)
        lean_via_drf = len(stored_by_drf) > before
        if forget:  # the whole stack then stores the same upload (same id, same time)
            JobScript.objects.all().delete()
        with monkeypatch.context() as off:
            off.setattr(TokenPostMiddleware, "answer", lambda self, *args: None)
            whole = client(authorization).post(LIST, body, format="json", **extra)
        return lean, whole, lean_via_drf

    return answers


def same(lean, whole) -> None:
    assert lean.status_code == whole.status_code
    assert lean.content == whole.content
    assert sorted(lean.items()) == sorted(whole.items())


def test_a_new_upload(answers, personas):
    lean, whole, via_drf = answers({"id_job": personas.owner_job.id_job, "submit_script": SCRIPT})
    assert lean.status_code == 201 and not via_drf
    same(lean, whole)
    for header in ("X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy", "X-Frame-Options",
                   "Content-Security-Policy", "Content-Language", "Content-Length"):  # fmt: skip
        assert lean[header], header


def test_a_duplicate(answers, service_account, personas):
    body = {"id_job": personas.owner_job.id_job, "submit_script": SCRIPT}
    assert service_account.client().post(LIST, body, format="json").status_code == 201
    lean, whole, via_drf = answers(body, forget=False)
    assert lean.status_code == 400 and not via_drf
    assert lean.json() == {"id_job": [jobscripts.DUPLICATE_MESSAGE]}
    same(lean, whole)


@pytest.mark.parametrize(
    "body",
    [
        {"id_job": "seven", "submit_script": SCRIPT},
        {"id_job": 0, "submit_script": SCRIPT},
        {"id_job": 5},
        {"id_job": 5, "submit_script": ""},
        {"id_job": 5, "submit_script": SCRIPT, "cluster": "nowhere"},
        ["not", "an", "object"],
    ],
)
def test_bad_input_is_a_400_with_field_errors(answers, slurm, body):
    lean, whole, _via_drf = answers(body)
    assert lean.status_code == 400
    assert isinstance(lean.json(), dict) and lean.json()
    same(lean, whole)


def test_a_bad_token(answers, slurm):
    lean, whole, _via_drf = answers({"id_job": 5, "submit_script": SCRIPT}, authorization="Token nope")
    assert lean.status_code == 401
    same(lean, whole)


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1:8000@evil.example", "bad host"])
def test_a_host_outside_allowed_hosts_gets_djangos_400(answers, slurm, host):
    lean, whole, via_drf = answers({"id_job": 5, "submit_script": SCRIPT}, HTTP_HOST=host)
    assert lean.status_code == 400 and not via_drf
    assert not JobScript.objects.exists()
    same(lean, whole)


@pytest.mark.parametrize("language", ["fr", "th,en;q=0.5", "xx", "en-US,en;q=0.9"])
def test_the_language_headers(answers, slurm, language):
    lean, whole, _via_drf = answers({"id_job": 5, "submit_script": SCRIPT}, HTTP_ACCEPT_LANGUAGE=language)
    assert lean.status_code == 201
    same(lean, whole)


def test_https_headers_and_redirect(answers, slurm, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    lean, whole, _via_drf = answers({"id_job": 5, "submit_script": SCRIPT}, secure=True)
    assert lean["Strict-Transport-Security"].startswith("max-age=3600")
    same(lean, whole)
    settings.SECURE_SSL_REDIRECT = True  # read when the middleware is built: a new client builds it
    lean, whole, via_drf = answers({"id_job": 6, "submit_script": SCRIPT})
    assert lean.status_code == 301 and not via_drf
    same(lean, whole)


def test_a_cookie_or_a_refused_user_agent_takes_the_whole_stack(answers, slurm, settings, service_account):
    lean, whole, via_drf = answers({"id_job": 5, "submit_script": SCRIPT}, HTTP_COOKIE="sessionid=abc")
    assert lean.status_code == 201 and via_drf
    import re

    settings.DISALLOWED_USER_AGENTS = [re.compile("badbot")]
    lean, whole, _via_drf = answers({"id_job": 6, "submit_script": SCRIPT}, HTTP_USER_AGENT="badbot/1")
    assert lean.status_code == 403
    same(lean, whole)


def test_an_exception_in_the_handler_is_djangos_500_with_the_headers(service_account, slurm, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(jobscripts, "store_script", fail)
    client = service_account.client()
    client.raise_request_exception = False
    response = client.post(LIST, {"id_job": 5, "submit_script": SCRIPT}, format="json")
    assert response.status_code == 500
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"


def test_mirrored_is_the_middleware_between_it_and_the_sign_in():
    order = settings.MIDDLEWARE
    here = order.index("userportal.token_posts.TokenPostMiddleware")
    # after the request log and the metrics, which time, count and log its answers
    assert order[:here] == ["userportal.middleware.RequestLogMiddleware", "userportal.metrics.MetricsMiddleware"]
    assert tuple(order[here + 1 : order.index(FIRST_SKIPPED)]) == MIRRORED
    assert set(NOTHING_TO_DO) <= set(MIRRORED)
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in order  # its header added by its code
    assert not getattr(settings, "WHITENOISE_ROOT", None)  # WhiteNoise serves nothing outside STATIC_URL
    assert not LIST.startswith(settings.STATIC_URL)


def test_a_warm_upload_is_two_statements_counted_in_the_metrics(service_account, personas, settings):
    settings.PORTAL_METRICS_REDIS_URL = ""
    metrics_store.reset()
    client = service_account.client()
    assert client.post(LIST, {"id_job": 999_100, "submit_script": SCRIPT}, format="json").status_code == 201
    metrics_store.reset()
    with CaptureQueriesContext(connections["default"]) as portal, CaptureQueriesContext(connections["slurm"]) as slurm:
        response = client.post(LIST, {"id_job": personas.owner_job.id_job, "submit_script": SCRIPT}, format="json")
    assert response.status_code == 201
    assert [q["sql"].split()[0] for q in portal.captured_queries] == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert len(slurm.captured_queries) == 1
    metrics_store.flush()
    counted = metrics_store.read((metrics.DB_QUERIES,))[metrics.DB_QUERIES]
    assert counted == {("jobstats:jobscript-list", "default"): 3.0, ("jobstats:jobscript-list", "slurm"): 1.0}
    metrics_store.reset()


# --- the WSGI entry point (userportal.wsgi: TokenPostHandler, before Django's request cycle) ---------
@pytest.fixture
def wsgi(service_account, monkeypatch):
    """wsgi(body, authorization=..., **extra): (status, headers, body) from userportal.wsgi's handler."""
    # As Django's test client does: the connections are not closed around a request (the test's transaction).
    monkeypatch.setattr(token_posts, "close_old_connections", lambda: None)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    handler = token_posts.TokenPostHandler()

    def post(body, *, authorization: str = "", **extra):
        key = authorization or f"Token {service_account.key}"
        environ = APIRequestFactory().post(LIST, body, format="json", HTTP_AUTHORIZATION=key, **extra).environ
        seen: dict = {}

        def start_response(status, headers, exc_info=None):
            seen.update(status=int(status.split()[0]), headers=sorted(headers))

        chunks = handler(environ, start_response)
        content = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
        return seen["status"], seen["headers"], content

    yield post
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def whole(service_account, monkeypatch):
    """whole(body, authorization=..., **extra): the whole stack's answer (the test client, no lean path)."""

    def post(body, *, authorization: str = "", **extra):
        client = service_account.client()
        if authorization:
            client.credentials(HTTP_AUTHORIZATION=authorization)
        with monkeypatch.context() as off:
            off.setattr(TokenPostMiddleware, "answer", lambda self, *args: None)
            response = client.post(LIST, body, format="json", **extra)
        return response.status_code, sorted(response.items()), response.content

    return post


@pytest.fixture
def stored_by_drf(monkeypatch):
    seen: list[int] = []
    create = JobScriptList.create
    monkeypatch.setattr(JobScriptList, "create", lambda self, *a, **k: seen.append(1) or create(self, *a, **k))
    return seen


def test_wsgi_a_new_upload_and_its_duplicate(wsgi, whole, personas, stored_by_drf, monkeypatch):
    monkeypatch.setattr(jobscripts.timezone, "now", lambda: NOW)
    body = {"id_job": personas.owner_job.id_job, "submit_script": SCRIPT}
    lean = wsgi(body)
    assert lean[0] == 201 and not stored_by_drf
    duplicate = wsgi(body)
    assert duplicate[0] == 400 and json.loads(duplicate[2]) == {"id_job": [jobscripts.DUPLICATE_MESSAGE]}
    assert duplicate == whole(body)
    JobScript.objects.all().delete()
    assert lean == whole(body)


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        ({"id_job": "seven", "submit_script": SCRIPT}, {}),
        ({"id_job": 5}, {}),
        ({"id_job": 5, "submit_script": SCRIPT, "cluster": "nowhere"}, {}),
        ({"id_job": 5, "submit_script": SCRIPT}, {"authorization": "Token nope"}),
        ({"id_job": 5, "submit_script": SCRIPT}, {"HTTP_HOST": "evil.example"}),
        ({"id_job": 5, "submit_script": SCRIPT}, {"HTTP_ACCEPT_LANGUAGE": "fr"}),
    ],
)
def test_wsgi_answers_equal_the_whole_stacks(wsgi, whole, slurm, body, extra, monkeypatch):
    """Bad input (a 400 with field errors), a bad token (401), a bad Host (Django's 400): declined by
    the lean path and answered by the whole cycle from the body it read; a language: the lean path."""
    monkeypatch.setattr(jobscripts.timezone, "now", lambda: NOW)
    lean = wsgi(body, **extra)
    JobScript.objects.all().delete()
    assert lean == whole(body, **extra)
    assert lean[0] in (201, 400, 401)


@pytest.mark.parametrize(
    "path", ["/jobqueue/api/cancel/%F3%B3%A1%B5%EF%90%AF%C2%81%2A%F3%9D%9E%B6%C2%AB", LIST + "%C3%A9t%C3%A9/"]
)
def test_wsgi_a_token_post_elsewhere_is_the_whole_cycles_even_to_a_path_outside_latin_1(wsgi, service_account, path):
    """The API fuzzer's 500 (a path that is not Latin-1 once decoded): the lean path's look at the
    request must leave the environ as the server gave it to the whole cycle."""
    handler = token_posts.TokenPostHandler()
    token = f"Token {service_account.key}"
    environ = APIRequestFactory().post(path, {}, format="json", HTTP_AUTHORIZATION=token).environ
    environ["PATH_INFO"] = unquote_to_bytes(path).decode("iso-8859-1")  # as a server gives it (the request decoded it)
    seen: dict = {}
    content = b"".join(handler(environ, lambda status, headers, exc_info=None: seen.update(status=status)))
    assert seen["status"][:3] in ("401", "404"), (seen, content[:300])  # the route's own answer, never a 500


def test_wsgi_counts_and_logs_the_upload_once(wsgi, personas, settings, caplog):
    settings.PORTAL_METRICS_REDIS_URL = ""
    metrics_store.reset()
    with caplog.at_level("INFO", logger="userportal.requests"):
        assert wsgi({"id_job": personas.owner_job.id_job, "submit_script": SCRIPT})[0] == 201
        assert wsgi({"id_job": 5})[0] == 400  # declined, then the whole cycle's answer
    assert len([line for line in caplog.messages if f"POST {LIST} " in line]) == 2
    requests = metrics_store.read((metrics.REQUESTS,))[metrics.REQUESTS]
    assert requests == {
        ("jobstats:jobscript-list", "POST", "201"): 1.0,
        ("jobstats:jobscript-list", "POST", "400"): 1.0,
    }
    metrics_store.reset()


def test_the_request_cycles_receivers_are_the_ones_the_lean_path_knows():
    """A new receiver of request_started or request_finished: say in LIFECYCLE_RECEIVERS what the
    lean path (which sends neither) does in its place."""
    assert token_posts.lifecycle_receivers() == set(token_posts.LIFECYCLE_RECEIVERS)


# That userportal.wsgi's application is TokenPostHandler: tests/test_startup.py, in a process of its own
# (the WSGI start-up freezes the heap: in the test process it kept earlier tests' connections alive).
