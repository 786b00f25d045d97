"""/api/schema/ lists to each user only what their access rules let them call."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.auth.models import Group

from userportal.access import SERVICE_GROUP

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

STAFF_PATHS = {"/jobqueue/api/dashboard"}
SERVICE_PATHS = {"/api/jobscripts/", "/api/jobscripts/{id_job}/"}


def schema_of(client, user) -> dict:
    client.force_login(user)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_a_user_is_not_shown_staff_or_service_endpoints(client, personas):
    schema = schema_of(client, personas.owner)
    assert not (STAFF_PATHS | SERVICE_PATHS) & set(schema["paths"])
    assert "/api/jobs/" in schema["paths"]
    assert "/jobqueue/api/submit" in schema["paths"]
    assert not {"JobScript", "JobScriptUpload"} & set(schema["components"]["schemas"])  # used only by them
    assert "JobRecord" in schema["components"]["schemas"]


def test_staff_see_every_endpoint(client, personas):
    assert (STAFF_PATHS | SERVICE_PATHS) <= set(schema_of(client, personas.staff)["paths"])


def test_a_service_account_sees_the_uploads_not_the_staff_dashboard(client, django_user_model):
    uploader = django_user_model.objects.create_user("prolog")
    uploader.groups.add(Group.objects.get_or_create(name=SERVICE_GROUP)[0])
    paths = set(schema_of(client, uploader)["paths"])
    assert SERVICE_PATHS <= paths
    assert not STAFF_PATHS & paths
