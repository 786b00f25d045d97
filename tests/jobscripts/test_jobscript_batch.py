"""POST /api/jobscripts/batch/: many scripts in one request, bulk-inserted, idempotent, with per-script errors."""

from __future__ import annotations

import random

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobstats.jobscripts import DuplicateScript, store_script
from jobstats.jobscripts_batch import store_scripts
from jobstats.models import JobScript

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

BATCH = "/api/jobscripts/batch/"


def script(i: int) -> str:
    return f"#!/bin/bash\n#SBATCH --array=0-999\nsrun ./task {i}\n"


def send(client, scripts, **extra):
    return client.post(BATCH, {"scripts": scripts, **extra}, format="json")


def test_a_batch_is_stored_with_each_submit_time(service_account, personas):
    job = personas.owner_job
    scripts = [{"id_job": 700_000 + i, "submit_script": script(i), "time_submit": 1_800_000_000 + i} for i in range(50)]
    scripts.append({"id_job": job.id_job, "submit_script": "known", "time_submit": job.time_submit + 1})
    response = send(service_account.client(), scripts)
    assert response.status_code == 200, response.content
    assert response.json() == {"stored": 51, "duplicates": 0, "rejected": []}
    assert JobScript.objects.get(id_job=700_007).time_submit == 1_800_000_007  # unknown to slurmdbd: the hint
    assert JobScript.objects.get(id_job=700_007).submit_script == script(7)
    assert JobScript.objects.get(id_job=job.id_job).time_submit == job.time_submit  # snapped to the job table
    assert JobScript.objects.get(id_job=job.id_job).uploaded_by == service_account.user
    assert JobScript.objects.get(id_job=700_007).cluster == "testcluster"


def test_a_batch_sent_twice_stores_nothing_the_second_time(service_account, slurm):
    scripts = [{"id_job": 710_000 + i, "submit_script": script(i), "time_submit": 1_800_000_000} for i in range(20)]
    scripts.append(dict(scripts[0]))  # the same script twice in one batch
    client = service_account.client()
    assert send(client, scripts).json() == {"stored": 20, "duplicates": 1, "rejected": []}
    assert send(client, scripts).json() == {"stored": 0, "duplicates": 21, "rejected": []}
    assert JobScript.objects.filter(id_job__gte=710_000).count() == 20


def test_a_script_the_single_endpoint_stored_is_a_duplicate(service_account, personas):
    job = personas.owner_job
    client = service_account.client()
    assert (
        client.post("/api/jobscripts/", {"id_job": job.id_job, "submit_script": "s"}, format="json").status_code == 201
    )
    answer = send(client, [{"id_job": job.id_job, "submit_script": "s", "time_submit": job.time_submit}]).json()
    assert answer == {"stored": 0, "duplicates": 1, "rejected": []}


def test_scripts_without_a_time_take_the_single_path(service_account, personas):
    job = personas.owner_job
    client = service_account.client()
    scripts = [{"id_job": job.id_job, "submit_script": "a"}, {"id_job": 720_001, "submit_script": "b"}]
    assert send(client, scripts).json() == {"stored": 2, "duplicates": 0, "rejected": []}
    assert JobScript.objects.get(id_job=job.id_job).time_submit == job.time_submit
    assert JobScript.objects.get(id_job=720_001).time_submit is None  # slurmdbd does not know it yet
    assert send(client, scripts).json() == {"stored": 0, "duplicates": 2, "rejected": []}


def test_invalid_scripts_are_rejected_by_index_and_the_others_stored(service_account, slurm):
    scripts = [
        {"id_job": 730_001, "submit_script": "ok", "time_submit": 1_800_000_000},
        {"id_job": 0, "submit_script": "bad id"},
        {"id_job": 730_002, "submit_script": ""},
        {"id_job": 730_003, "submit_script": "x", "cluster": "nosuchcluster"},
        {"id_job": 730_004, "submit_script": "x", "time_submit": -1},
        "not an object",
        {"id_job": "730005", "submit_script": "a string id, as the single endpoint takes it"},
    ]
    response = send(service_account.client(), scripts)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stored"] == 2
    assert [(r["index"], r["id_job"], sorted(r["errors"])) for r in body["rejected"]] == [
        (1, 0, ["id_job"]),
        (2, 730_002, ["submit_script"]),
        (3, 730_003, ["cluster"]),
        (4, 730_004, ["time_submit"]),
        (5, None, ["non_field_errors"]),
    ]
    assert set(JobScript.objects.values_list("id_job", flat=True)) == {730_001, 730_005}


@override_settings(JOBSCRIPT_MAX_BYTES=1024)
def test_a_script_over_the_size_limit_is_rejected(service_account, slurm):
    body = send(service_account.client(), [{"id_job": 5, "submit_script": "x" * 1025}]).json()
    assert body["stored"] == 0
    assert list(body["rejected"][0]["errors"]) == ["submit_script"]


@pytest.mark.parametrize("data", [{}, {"scripts": []}, {"scripts": "x"}, {"scripts": [{}] * 1001}])
def test_what_is_not_a_batch_is_a_400_with_a_field_error(service_account, slurm, data):
    response = service_account.client().post(BATCH, data, format="json")
    assert response.status_code == 400
    assert "scripts" in response.json()


def test_an_oversized_body_is_refused_before_it_is_parsed(service_account, slurm):
    response = service_account.client().post(
        BATCH, "{}", content_type="application/json", HTTP_CONTENT_LENGTH=str(17 * 1024 * 1024)
    )
    assert response.status_code == 400
    assert "scripts" in response.json()


def test_anonymous_is_401_and_a_user_is_403(personas, client, slurm):
    assert client.post(BATCH, {"scripts": [{"id_job": 1, "submit_script": "x"}]}, "application/json").status_code in (
        401,
        403,
    )
    client.force_login(personas.owner)
    response = client.post(BATCH, {"scripts": [{"id_job": 1, "submit_script": "x"}]}, "application/json")
    assert response.status_code == 403
    assert not JobScript.objects.exists()


@override_settings(SLURM_CLUSTERS=["testcluster", "othercluster"])
def test_a_token_bound_to_a_cluster_uploads_for_that_cluster_only(service_account, slurm):
    from userportal.models import ApiToken

    ApiToken.objects.filter(user=service_account.user).update(cluster="othercluster")
    scripts = [{"id_job": 1, "submit_script": "x"}, {"id_job": 2, "submit_script": "y", "cluster": "testcluster"}]
    body = send(service_account.client(), scripts).json()
    assert body["stored"] == 1
    assert [r["index"] for r in body["rejected"]] == [1]
    assert JobScript.objects.get(id_job=1).cluster == "othercluster"


def test_a_batch_costs_the_same_queries_for_5_and_500_scripts(service_account, slurm):
    client = service_account.client()
    send(client, [{"id_job": 1, "submit_script": "warm", "time_submit": 1_800_000_000}])  # the token is now cached
    fields = [field for field in JobScript._meta.concrete_fields if not field.primary_key]
    for size, first in ((5, 740_000), (500, 750_000)):
        scripts = [{"id_job": first + i, "submit_script": script(i), "time_submit": 1_800_000_000} for i in range(size)]
        with CaptureQueriesContext(connections["default"]) as portal, CaptureQueriesContext(connections["slurm"]) as db:
            assert send(client, scripts).json()["stored"] == size
        statements = [query["sql"].split()[0].upper() for query in portal.captured_queries]
        # the stored (id_job, time_submit) pairs: one read (on PostgreSQL, iterator()'s DECLARE ... CURSOR FOR SELECT)
        assert statements.count("SELECT") + statements.count("DECLARE") == 1
        # One multi-row INSERT, or as many as the backend's parameter limit needs (SQLite: 999).
        per_insert = connections["default"].ops.bulk_batch_size(fields, [None] * size)
        assert statements.count("INSERT") == -(-size // min(per_insert, 1000))
        assert len(db.captured_queries) == 1  # every id's job records


def test_the_batch_dates_scripts_as_the_single_upload_does(personas):
    """The same uploads, one by one through store_script and at once through store_scripts: same rows."""
    slurm = personas.slurm
    rng = random.Random(14)
    now = int(timezone.now().timestamp())
    uploads = []
    for i in range(40):
        id_job = 760_000 + i
        submitted = now - rng.randint(60, 86400 * 20)
        if rng.random() < 0.6:  # known to slurmdbd (some ended weeks ago, some requeued)
            ended = min(submitted + rng.randint(60, 86400), now) if rng.random() < 0.7 else 0
            slurm.job("owner", "def-owner", id_job=id_job, time_submit=submitted, time_start=0, time_end=ended)
            if rng.random() < 0.2:
                slurm.job("owner", "def-owner", id_job=id_job, time_submit=submitted + 600, time_start=0, time_end=0)
        hint = submitted + rng.choice([0, 1]) if rng.random() < 0.8 else None
        uploads.append({"cluster": "testcluster", "id_job": id_job, "submit_script": script(i), "time_submit": hint})
    at = timezone.now()
    for upload in uploads:
        try:
            store_script(received_at=at, **upload)
        except DuplicateScript:
            pass
    single = sorted(JobScript.objects.values_list("id_job", "time_submit", "submit_script"))
    JobScript.objects.all().delete()
    assert store_scripts(uploads, received_at=at) == (40, 0)
    assert sorted(JobScript.objects.values_list("id_job", "time_submit", "submit_script")) == single
