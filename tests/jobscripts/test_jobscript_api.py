"""POST /api/jobscripts/ speaks TrailblazingTurtle's uploader protocol; reading needs staff and a permission."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from jobstats.jobscripts import DUPLICATE_MESSAGE
from jobstats.models import JobScript

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

LIST = "/api/jobscripts/"
SCRIPT = "#!/bin/bash\n#SBATCH --time=1:00:00\nsrun ./simulate --steps 10\n"
DUPLICATE_TEXT = "job script with this id job already exists"  # what the uploader greps for


def post(client: APIClient, **data):
    return client.post(LIST, data, format="json")


# --- uploads --------------------------------------------------------------------------------
def test_upload_answers_201_echoing_the_script_and_finds_time_submit(service_account, personas):
    job = personas.owner_job
    response = post(service_account.client(), id_job=job.id_job, submit_script=SCRIPT)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id_job"] == job.id_job
    assert body["submit_script"] == SCRIPT
    assert body["cluster"] == "testcluster"
    assert body["time_submit"] == job.time_submit  # looked up in the job table
    stored = JobScript.objects.get(id_job=job.id_job)
    assert stored.uploaded_by == service_account.user
    assert stored.time_submit == job.time_submit


def test_upload_of_a_job_slurmdbd_does_not_know_yet_keeps_time_submit_unknown(service_account, slurm):
    response = post(service_account.client(), id_job=999_001, submit_script=SCRIPT)
    assert response.status_code == 201
    assert response.json()["time_submit"] is None
    assert JobScript.objects.get(id_job=999_001).time_submit is None


def test_upload_with_cluster_and_time_submit(service_account, slurm):
    response = post(
        service_account.client(), id_job=5, submit_script=SCRIPT, cluster="testcluster", time_submit=1700000000
    )
    assert response.status_code == 201
    assert JobScript.objects.get(id_job=5).time_submit == 1700000000


def test_whitespace_is_kept_and_nul_characters_are_stripped(service_account, slurm):
    script = "  #!/bin/bash\x00\necho hi\x00  \n\n"
    response = post(service_account.client(), id_job=6, submit_script=script)
    assert response.status_code == 201
    assert JobScript.objects.get(id_job=6).submit_script == "  #!/bin/bash\necho hi  \n\n"


def test_lone_surrogates_are_replaced_not_a_500(service_account, slurm):
    body = '{"id_job": 7, "submit_script": "echo \\ud800 done"}'
    response = service_account.client().post(LIST, body, content_type="application/json")
    assert response.status_code == 201
    assert JobScript.objects.get(id_job=7).submit_script == "echo \ufffd done"


def test_duplicate_upload_is_400_with_the_text_the_uploader_looks_for(service_account, personas):
    client = service_account.client()
    job = personas.owner_job
    assert post(client, id_job=job.id_job, submit_script=SCRIPT).status_code == 201
    response = post(client, id_job=job.id_job, submit_script=SCRIPT)
    assert response.status_code == 400
    assert DUPLICATE_TEXT in response.content.decode()
    assert response.json() == {"id_job": [DUPLICATE_MESSAGE]}
    assert JobScript.objects.filter(id_job=job.id_job).count() == 1


def test_duplicate_text_is_not_translated(service_account, personas):
    client = service_account.client()
    post(client, id_job=personas.owner_job.id_job, submit_script=SCRIPT)
    response = client.post(
        LIST, {"id_job": personas.owner_job.id_job, "submit_script": SCRIPT}, format="json", HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert response.status_code == 400
    assert DUPLICATE_TEXT in response.content.decode()


def test_duplicate_of_an_unresolved_upload_is_detected(service_account, slurm):
    client = service_account.client()
    assert post(client, id_job=888_001, submit_script=SCRIPT).status_code == 201
    response = post(client, id_job=888_001, submit_script=SCRIPT)
    assert response.status_code == 400
    assert DUPLICATE_TEXT in response.content.decode()


def test_a_different_script_under_an_unknown_id_is_another_job(service_account, slurm):
    client = service_account.client()
    assert post(client, id_job=888_002, submit_script=SCRIPT).status_code == 201
    assert post(client, id_job=888_002, submit_script=SCRIPT + "echo 2\n").status_code == 201


def test_reused_job_ids_do_not_collide(service_account, personas):
    slurm = personas.slurm
    old = personas.owner_job
    new = slurm.job(
        "owner", "def-owner", id_job=old.id_job, time_submit=old.time_submit + 86400 * 30, time_start=0, time_end=0
    )
    client = service_account.client()
    assert post(client, id_job=old.id_job, submit_script="old", time_submit=old.time_submit).status_code == 201
    assert post(client, id_job=new.id_job, submit_script="new", time_submit=new.time_submit).status_code == 201
    assert JobScript.objects.filter(id_job=old.id_job).count() == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"submit_script": SCRIPT}, "id_job"),
        ({"id_job": 0, "submit_script": SCRIPT}, "id_job"),
        ({"id_job": "abc", "submit_script": SCRIPT}, "id_job"),
        ({"id_job": 2**32, "submit_script": SCRIPT}, "id_job"),
        ({"id_job": 8}, "submit_script"),
        ({"id_job": 8, "submit_script": ""}, "submit_script"),
        ({"id_job": 8, "submit_script": "\x00\x00"}, "submit_script"),
        ({"id_job": 8, "submit_script": SCRIPT, "cluster": "nosuchcluster"}, "cluster"),
        ({"id_job": 8, "submit_script": SCRIPT, "time_submit": -5}, "time_submit"),
        # and what the lean view hands to JobScriptList (jobstats.api_jobscripts_upload)
        ({"id_job": True, "submit_script": SCRIPT}, "id_job"),
        ({"id_job": 8, "submit_script": ["x"]}, "submit_script"),
        ({"id_job": 8, "submit_script": SCRIPT, "time_submit": "soon"}, "time_submit"),
        ({"id_job": 8, "submit_script": SCRIPT, "cluster": "x" * 65}, "cluster"),
    ],
)
def test_invalid_uploads_are_400_with_field_errors(service_account, slurm, data, field):
    response = service_account.client().post(LIST, data, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not JobScript.objects.exists()


def test_malformed_json_is_400(service_account, slurm):
    response = service_account.client().post(LIST, "{not json", content_type="application/json")
    assert response.status_code == 400


@override_settings(JOBSCRIPT_MAX_BYTES=1024)
def test_script_over_the_size_limit_is_400(service_account, slurm):
    response = post(service_account.client(), id_job=9, submit_script="é" * 600)  # 1200 bytes of UTF-8
    assert response.status_code == 400
    assert "submit_script" in response.json()
    assert post(service_account.client(), id_job=9, submit_script="e" * 1000).status_code == 201


@override_settings(JOBSCRIPT_MAX_BYTES=1024)
def test_oversized_body_is_refused_before_it_is_parsed(service_account, slurm):
    body = json.dumps({"id_job": 10, "submit_script": "x" * 200_000})
    response = service_account.client().post(LIST, body, content_type="application/json")
    assert response.status_code == 400
    assert "submit_script" in response.json()


def test_anonymous_upload_is_401(slurm):
    assert post(APIClient(), id_job=1, submit_script=SCRIPT).status_code == 401


def test_signed_in_user_who_is_not_staff_cannot_upload(personas):
    client = APIClient()
    client.force_authenticate(personas.owner)
    assert post(client, id_job=1, submit_script=SCRIPT).status_code == 403


# --- reading and deleting -------------------------------------------------------------------
@pytest.fixture
def stored(service_account, personas):
    client = service_account.client()
    for id_job in (101, 102, 103):
        post(client, id_job=id_job, submit_script=f"echo {id_job}\n")
    return JobScript.objects.all()


def test_service_account_token_may_only_upload(service_account, stored):
    client = service_account.client()
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}101/").status_code == 403
    assert client.delete(f"{LIST}101/").status_code == 403
    assert JobScript.objects.filter(id_job=101).exists()


@pytest.mark.parametrize("persona", ["owner", "member", "outsider"])
def test_users_cannot_read_scripts(personas, stored, persona):
    client = APIClient()
    client.force_authenticate(getattr(personas, persona))
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}101/").status_code == 403


def test_anonymous_cannot_read_scripts(stored):
    assert APIClient().get(LIST).status_code == 401


def test_staff_without_the_permission_cannot_read_scripts(personas, stored):
    client = APIClient()
    client.force_authenticate(personas.staff)
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}101/").status_code == 403


def test_staff_with_the_view_permission_list_scripts_newest_first(personas, stored, grant, client):
    grant(personas.staff, "view_jobscript")
    client.force_login(personas.staff)
    body = client.get(LIST).json()
    assert body["count"] == 3
    assert [row["id_job"] for row in body["results"]] == [103, 102, 101]
    assert body["results"][0]["submit_script"] == "echo 103\n"
    assert body["results"][0]["uploaded_by"] == "slurm-prolog"
    page = client.get(LIST, {"limit": 1, "offset": 1}).json()
    assert [row["id_job"] for row in page["results"]] == [102]
    assert client.get(LIST, {"id_job": 101}).json()["count"] == 1
    assert client.get(LIST, {"cluster": "othercluster"}).json()["count"] == 0
    assert client.get(LIST, {"id_job": "x"}).status_code == 400


def test_staff_with_the_view_permission_read_one_script(personas, stored, grant, client):
    grant(personas.staff, "view_jobscript")
    client.force_login(personas.staff)
    assert client.get(f"{LIST}102/").json()["submit_script"] == "echo 102\n"
    assert client.get(f"{LIST}404/").status_code == 404
    assert client.delete(f"{LIST}102/").status_code == 403  # viewing is not deleting


def test_staff_with_the_delete_permission_delete_a_script(personas, stored, grant):
    grant(personas.staff, "view_jobscript", "delete_jobscript")
    client = APIClient()
    client.force_authenticate(personas.staff)
    assert client.delete(f"{LIST}102/").status_code == 204
    assert not JobScript.objects.filter(id_job=102).exists()
    assert JobScript.objects.count() == 2


def test_the_list_costs_the_same_queries_for_1_and_3_scripts(
    personas, service_account, grant, django_assert_max_num_queries
):
    grant(personas.staff, "view_jobscript")
    client = APIClient()
    client.force_authenticate(personas.staff)
    for id_job in (1, 2, 3):
        post(service_account.client(), id_job=id_job, submit_script="x")
        with django_assert_max_num_queries(4):
            assert client.get(LIST).json()["count"] == id_job


def test_openapi_schema_documents_the_endpoint(personas, client):
    client.force_login(personas.staff)  # a plain user's schema leaves it out (tests/test_api_schema.py)
    schema = client.get(reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/jobscripts/"])
    assert {"get", "delete"} <= set(paths["/api/jobscripts/{id_job}/"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    assert DUPLICATE_MESSAGE in json.dumps(paths["/api/jobscripts/"]["post"]["responses"]["400"])


# --- tokens bound to one cluster -------------------------------------------------------------
@override_settings(SLURM_CLUSTERS=["testcluster", "othercluster"])
def test_a_token_bound_to_a_cluster_uploads_for_that_cluster_only(service_account, slurm):
    from userportal.models import ApiToken

    ApiToken.objects.filter(user=service_account.user).update(cluster="othercluster")
    client = service_account.client()
    response = post(client, id_job=41, submit_script=SCRIPT)  # TT's uploader sends no cluster
    assert response.status_code == 201, response.content
    assert response.json()["cluster"] == "othercluster"
    assert JobScript.objects.get(id_job=41).cluster == "othercluster"
    refused = post(client, id_job=42, submit_script=SCRIPT, cluster="testcluster")
    assert refused.status_code == 400
    assert "othercluster only" in refused.json()["cluster"][0]
    assert not JobScript.objects.filter(id_job=42).exists()


@override_settings(SLURM_CLUSTERS=["testcluster", "othercluster"])
def test_an_unbound_token_uploads_for_any_cluster(service_account, slurm):
    client = service_account.client()
    assert post(client, id_job=43, submit_script=SCRIPT).json()["cluster"] == "testcluster"
    assert post(client, id_job=44, submit_script=SCRIPT, cluster="othercluster").status_code == 201


def test_an_upload_costs_at_most_three_portal_queries_and_one_slurm_query(
    service_account, personas, django_assert_max_num_queries
):
    client = service_account.client()
    assert post(client, id_job=999_002, submit_script=SCRIPT).status_code == 201  # the token is now cached
    job = personas.owner_job
    # The duplicate check and the INSERT (tests run inside a transaction: a SAVEPOINT pair too).
    with django_assert_max_num_queries(2 + 2), django_assert_max_num_queries(1, using="slurm"):
        assert post(client, id_job=job.id_job, submit_script=SCRIPT).status_code == 201
    # A sent time_submit is snapped to the job table's value: the same one Slurm query.
    with django_assert_max_num_queries(2 + 2), django_assert_max_num_queries(1, using="slurm"):
        response = post(client, id_job=job.id_job + 1000, submit_script=SCRIPT, time_submit=1700000000)
    assert response.status_code == 201
    assert JobScript.objects.get(id_job=job.id_job).time_submit == job.time_submit


def test_a_revoked_token_is_refused_at_once_despite_the_cache(service_account, slurm):
    from userportal.tokens import revoke_tokens

    client = service_account.client()
    assert post(client, id_job=999_003, submit_script=SCRIPT).status_code == 201
    revoke_tokens(service_account.user)
    assert post(client, id_job=999_004, submit_script=SCRIPT).status_code == 401
