"""A token's upload is answered before most of the middleware and without DRF (jobstats.api_jobscripts_upload,
userportal.token_posts), the same way.

One INSERT on the portal's database and one Slurm query per new upload, the same body and headers
as JobScriptList's, every refusal still answered by JobScriptList (malformed bodies: the
parametrized cases of test_jobscript_api.py), and the schema still describing the endpoint.
"""

from __future__ import annotations

import pytest
import yaml
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from jobstats.api_jobscripts import JobScriptList, JobScriptUploadSerializer
from jobstats.jobscripts import DUPLICATE_MESSAGE
from jobstats.models import JobScript
from userportal import tokens
from userportal.models import ApiToken

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

LIST = "/api/jobscripts/"
SCRIPT = "#!/bin/bash\n#SBATCH --array=0-999\nsrun ./task\n"


@pytest.fixture
def no_drf_create(monkeypatch):
    """Fail if JobScriptList (DRF) stores an upload: the hot path must have answered."""

    def refuse(*args, **kwargs):
        raise AssertionError("the upload went through DRF")

    monkeypatch.setattr(JobScriptList, "create", refuse)


def statements(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"].split()[0].upper() for query in context.captured_queries]


def test_a_new_upload_is_one_insert_and_one_slurm_query(service_account, personas, no_drf_create):
    client = service_account.client()
    assert client.post(LIST, {"id_job": 999_100, "submit_script": SCRIPT}, format="json").status_code == 201
    job = personas.owner_job  # the token is now trusted in this process: no token read, no cache read
    with CaptureQueriesContext(connections["default"]) as portal, CaptureQueriesContext(connections["slurm"]) as slurm:
        response = client.post(LIST, {"id_job": job.id_job, "submit_script": SCRIPT}, format="json")
    assert response.status_code == 201
    # Tests run inside a transaction: the INSERT gets a savepoint pair (in autocommit, it is alone).
    assert statements(portal) == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert statements(slurm) == ["SELECT"]  # the submit time
    assert JobScript.objects.get(id_job=job.id_job).time_submit == job.time_submit


def test_a_duplicate_costs_one_read_more_and_answers_the_uploaders_text(service_account, personas, no_drf_create):
    client = service_account.client()
    job = personas.owner_job
    assert client.post(LIST, {"id_job": job.id_job, "submit_script": SCRIPT}, format="json").status_code == 201
    with CaptureQueriesContext(connections["default"]) as portal:
        response = client.post(LIST, {"id_job": job.id_job, "submit_script": SCRIPT}, format="json")
    assert response.status_code == 400
    assert response.json() == {"id_job": [DUPLICATE_MESSAGE]}
    assert statements(portal) == ["SAVEPOINT", "INSERT", "RELEASE", "SELECT"]
    assert JobScript.objects.filter(id_job=job.id_job).count() == 1


def test_the_answer_is_the_serializers(service_account, personas, no_drf_create):
    job = personas.owner_job
    response = service_account.client().post(LIST, {"id_job": job.id_job, "submit_script": SCRIPT}, format="json")
    row = JobScript.objects.get(id_job=job.id_job)
    assert response.content == JSONRenderer().render(JobScriptUploadSerializer(row).data)
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert "Accept" in response["Vary"]
    # the headers of the middleware above the hot path, and of the one below it that sets one
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"]


def test_the_upload_is_answered_before_the_sign_in_middleware(service_account, slurm, monkeypatch, caplog):
    def no_sign_in(self, request):
        raise AssertionError("the upload went through AuthenticationMiddleware")

    monkeypatch.setattr(AuthenticationMiddleware, "process_request", no_sign_in)
    with caplog.at_level("INFO", logger="userportal.requests"):
        response = service_account.client().post(LIST, {"id_job": 5, "submit_script": SCRIPT}, format="json")
    assert response.status_code == 201
    assert response.wsgi_request.resolver_match.view_name == "jobstats:jobscript-list"  # the metrics' label
    # the request log line, with the uploader's name
    assert any(f"POST {LIST} 201" in line and "user=slurm-prolog" in line for line in caplog.messages)


def test_a_query_string_or_another_method_takes_the_whole_stack(service_account, slurm, no_drf_create):
    client = service_account.client()
    with pytest.raises(AssertionError, match="through DRF"):
        client.post(f"{LIST}?x=1", {"id_job": 5, "submit_script": SCRIPT}, format="json")


def test_staff_session_uploads_still_go_through_drf_with_the_same_answer(client, personas, grant, monkeypatch):
    job = personas.owner_job
    grant(personas.staff, "add_jobscript")
    client.force_login(personas.staff)
    seen = []
    create = JobScriptList.create
    monkeypatch.setattr(JobScriptList, "create", lambda self, *a, **k: seen.append(1) or create(self, *a, **k))
    response = client.post(LIST, {"id_job": job.id_job, "submit_script": SCRIPT}, content_type="application/json")
    assert response.status_code == 201 and seen == [1]
    assert response.content == JSONRenderer().render(JobScriptUploadSerializer(JobScript.objects.get()).data)


def test_what_drf_accepts_beyond_the_plain_form_is_still_accepted(service_account, slurm):
    response = service_account.client().post(LIST, {"id_job": "77", "submit_script": SCRIPT}, format="json")
    assert response.status_code == 201
    assert response.json()["id_job"] == 77


def test_refusals_are_still_drfs(service_account, personas, token_client):
    assert (
        token_client(personas.owner).post(LIST, {"id_job": 5, "submit_script": SCRIPT}, format="json").status_code
        == 403
    )
    bad = service_account.client()
    bad.credentials(HTTP_AUTHORIZATION="Token nope")
    response = bad.post(LIST, {"id_job": 5, "submit_script": SCRIPT}, format="json")
    assert response.status_code == 401
    assert "Token" in response["WWW-Authenticate"]


def test_a_token_edited_in_the_database_is_refused_once_its_copies_expire(service_account, slurm, monkeypatch):
    client = service_account.client()
    assert client.post(LIST, {"id_job": 1, "submit_script": SCRIPT}, format="json").status_code == 201
    ApiToken.objects.filter(user=service_account.user).update(revoked=True)  # not through revoke_tokens
    # Within TOKEN_CACHE_SECONDS of the row's read, this process's copy is trusted (the documented bound)...
    assert client.post(LIST, {"id_job": 2, "submit_script": SCRIPT}, format="json").status_code == 201
    now = tokens.time.time()
    monkeypatch.setattr(tokens.time, "time", lambda: now + tokens.TOKEN_CACHE_SECONDS + 1)
    # ...and after it, neither this process's copy nor the shared cache's is: the row is read again.
    assert client.post(LIST, {"id_job": 3, "submit_script": SCRIPT}, format="json").status_code == 401


def test_the_schema_still_describes_the_upload(client, personas):
    client.force_login(personas.staff)
    schema = yaml.safe_load(client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi").content)
    post = schema["paths"]["/api/jobscripts/"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobScriptUpload")
    assert {"201", "400", "401", "403"} <= set(post["responses"])
