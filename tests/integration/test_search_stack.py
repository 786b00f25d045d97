"""search against the stack, in-process: the stack's directory (slapd), its Slurm users, accounts and jobs
(an array task as sacct names it). Expected values come from Slurm's own commands and the directory."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm"])]


@pytest.fixture
def staff_client(client, stack_dir):
    client.force_login(get_user_model().objects.create_user("staffer", is_staff=True))
    return client


def results(client, query: str) -> dict:
    response = client.get(reverse("search:results"), {"q": query})
    assert response.status_code == 200, response.content
    return response.json()


def test_a_user_is_found_in_the_directory_and_slurm(staff_client, settings):
    assert settings.LDAP_ENABLED, "the stack's portal.env configures LDAP sign-in"
    body = results(staff_client, "alice")
    assert body["unavailable"] == []
    [alice] = [r for r in body["results"] if r["kind"] == "user" and r["label"] == "alice"]
    assert "directory" in alice["detail"] and "Slurm" in alice["detail"]
    assert alice["url"] == reverse("usersummary:user", kwargs={"username": "alice"})


def test_accounts_are_sacctmgrs(staff_client, slurm_cmd):
    out = slurm_cmd(["sacctmgr", "-n", "-P", "show", "account", "format=account"]).stdout
    accounts = {line for line in out.splitlines() if line}
    found = {r["label"] for r in results(staff_client, "ph")["results"] if r["kind"] == "account"}
    assert found == {a for a in accounts if "ph" in a}


def test_an_array_task_is_found_as_sacct_names_it(staff_client, slurm_cmd):
    out = slurm_cmd(["sacct", "-n", "-X", "-P", "-a", "-S", "2020-01-01", "-o", "JobID,JobIDRaw,User"]).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    task, raw, user = next(row for row in rows if "_" in row[0] and "[" not in row[0])
    [hit] = [r for r in results(staff_client, task)["results"] if r["kind"] == "job"]
    assert hit["label"] == task
    assert hit["url"] == reverse("jobstats:job", kwargs={"username": user, "job_id": raw})


def test_the_page_renders_the_results(staff_client):
    response = staff_client.get(reverse("search:index"), {"q": "bob"})
    assert response.status_code == 200
    assert reverse("usersummary:user", kwargs={"username": "bob"}) in response.content.decode()
