"""/api/jobstats/<job id>/: the job page's efficiency, figures and advice as JSON, for the jobstats command."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from jobstats import jobpage, services
from userportal.prometheus import MetricsSession
from userportal.tokens import issue_token

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def url(job_id) -> str:
    return reverse("jobstats:api-jobstats", kwargs={"job_id": str(job_id)})


def get(client, job_id, status=200, **params):
    response = client.get(url(job_id), params)
    assert response.status_code == status, response.content[:500]
    return json.loads(response.content)


@pytest.fixture
def owner(client, personas):
    client.force_login(personas.owner)
    return client


def test_a_finished_job_answers_what_its_page_computes(owner, jobs):
    body = get(owner, jobs.gpu.id_job)
    page = jobpage.job_page(
        "owner", "testcluster", services.find_records("owner", "testcluster", jobs.gpu.id_job), MetricsSession()
    )
    assert body["id_job"] == jobs.gpu.id_job
    assert body["user"] == "owner"
    assert body["state"] == "COMPLETED"
    assert body["name"] == "train"
    assert body["resources"]["cpus"] == 4
    assert body["url"].endswith(f"/secure/jobstats/owner/{jobs.gpu.id_job}/")
    assert page.efficiency is not None
    measures = {m["kind"]: m for m in body["efficiency"]["measures"]}
    assert set(measures) == {m.kind for m in page.efficiency.measures}
    cpu = page.efficiency.get("cpu")
    assert measures["cpu"]["percent"] == cpu.percent
    assert measures["cpu"]["sentence"] == str(cpu.sentence)
    assert measures["cpu"]["title"] == "CPU"
    assert body["efficiency"]["source"] == "accounting"
    assert body["usage"]["cpu_seconds"] == pytest.approx(13000)
    assert [f["rule"] for f in body["advice"]] == [f.rule for f in page.advice]
    assert body["advice"], "the train job has advice (its requeue and exclude options)"
    assert {f["severity"] for f in body["advice"]} <= {"info", "warning", "critical"}
    assert body["pending"] is None


def test_a_pending_job_says_why_it_waits(owner, jobs):
    body = get(owner, jobs.pending.id_job)
    assert body["state"] == "PENDING"
    assert body["efficiency"] is None
    assert body["pending"]["sentence"]


def test_an_array_task_is_named_as_sacct_names_it(owner, jobs):
    task = jobs.array_tasks[1]
    body = get(owner, f"{jobs.array_master}_{task.id_array_task}")
    assert body["id_job"] == task.id_job


def test_sentences_follow_accept_language(owner, jobs):
    response = owner.get(url(jobs.gpu.id_job), HTTP_ACCEPT_LANGUAGE="fr")
    body = json.loads(response.content)
    assert {m["title"] for m in body["efficiency"]["measures"]} >= {"Mémoire"}


@pytest.mark.parametrize("job_id", ["1-3", "1,2", "0"])
def test_more_or_less_than_one_job_is_a_400(owner, jobs, job_id):
    assert "job_id" in get(owner, job_id, status=400)


def test_another_users_job_is_not_found(client, personas, jobs):
    client.force_login(personas.member)
    get(client, jobs.gpu.id_job, status=404)
    assert "user" in get(client, jobs.gpu.id_job, status=400, user="owner")


def test_staff_ask_for_a_users_job(client, personas, jobs):
    client.force_login(personas.staff)
    get(client, jobs.gpu.id_job, status=404)
    assert get(client, jobs.gpu.id_job, user="owner")["id_job"] == jobs.gpu.id_job


def test_an_unknown_job_is_a_404(owner, jobs):
    get(owner, 999999, status=404)


def test_a_personal_token_reads_it_and_anonymous_is_refused(personas, jobs):
    _token, key = issue_token(personas.owner)
    response = Client().get(url(jobs.gpu.id_job), HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    assert Client().get(url(jobs.gpu.id_job)).status_code in (401, 403)
    assert Client().get(url(jobs.gpu.id_job), HTTP_AUTHORIZATION="Token wrong").status_code == 401


def test_the_schema_documents_it(client, personas):
    import yaml

    client.force_login(personas.owner)
    schema = yaml.safe_load(client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi").content)
    operation = schema["paths"]["/api/jobstats/{job_id}/"]["get"]
    assert operation["operationId"] == "jobstats_retrieve"
    assert {"200", "400", "404"} <= set(operation["responses"])
    assert "JobEfficiency" in schema["components"]["schemas"]
