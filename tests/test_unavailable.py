"""Pages whose data source is down still render and say so; JSON answers are JSON errors."""

from __future__ import annotations

import copy
import json

import pytest
from django.db import connections
from django.http import JsonResponse
from django.test import RequestFactory
from django.urls import reverse

from userportal.errors import PrometheusUnavailable
from userportal.middleware import ContentSecurityPolicyMiddleware

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def slurm_db_down():
    """Swap the `slurm` connection for one to a database file that cannot be opened (a real driver error)."""
    original = connections["slurm"]
    settings_dict = copy.deepcopy(original.settings_dict)
    settings_dict["NAME"] = "/nonexistent-dir/slurm.sqlite3"
    if settings_dict["ENGINE"].endswith("mysql"):
        settings_dict["PORT"] = 9
    broken = original.__class__(settings_dict, alias="slurm")
    connections["slurm"] = broken
    yield
    broken.close()
    connections["slurm"] = original


def test_home_page_renders_with_a_notice(personas, client, slurm_db_down):
    client.force_login(personas.owner)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "The Slurm accounting database is not answering" in response.content.decode()


def test_jobs_page_renders_with_a_notice(personas, client, slurm_db_down):
    client.force_login(personas.owner)
    response = client.get(reverse("jobstats:user", kwargs={"username": "owner"}))
    assert response.status_code == 200
    assert "The Slurm accounting database is not answering" in response.content.decode()


def test_health_says_which_source_is_down(personas, client, slurm_db_down):
    body = json.loads(client.get(reverse("health")).content)
    assert body["sources"]["slurmdb"]["ok"] is False
    assert body["sources"]["portal_db"]["ok"] is True


def _raise(exc):
    def view(request):
        raise exc

    return view


def test_an_unhandled_data_source_error_becomes_a_page_with_status_503(rf: RequestFactory, personas):
    request = rf.get("/secure/somewhere/")
    request.user = personas.owner
    middleware = ContentSecurityPolicyMiddleware(lambda r: JsonResponse({}))
    response = middleware.process_exception(request, PrometheusUnavailable("connection refused"))
    assert response.status_code == 503
    assert "Prometheus is not answering" in response.content.decode()


def test_an_unhandled_data_source_error_on_a_json_path_is_json(rf: RequestFactory, personas):
    request = rf.get("/secure/jobstats/owner/graph/cpu.json")
    request.user = personas.owner
    middleware = ContentSecurityPolicyMiddleware(lambda r: JsonResponse({}))
    response = middleware.process_exception(request, PrometheusUnavailable("connection refused"))
    assert response.status_code == 503
    assert json.loads(response.content)["source"] == "prometheus"


def test_a_bug_is_not_disguised_as_an_outage(rf: RequestFactory, personas):
    request = rf.get("/")
    middleware = ContentSecurityPolicyMiddleware(lambda r: JsonResponse({}))
    assert middleware.process_exception(request, KeyError("bug")) is None
