"""A NUL character in a parameter is a 400 naming it, not a 500 from the database (PostgreSQL refuses it)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_staff_filter_is_a_400(client, django_user_model):
    staff = django_user_model.objects.create_user("staffer", is_staff=True)
    client.force_login(staff)
    response = client.get("/secure/priorities/staff/", {"account": "a\x00b"})
    assert response.status_code == 400
    assert "account" in response.content.decode()


def test_a_nul_in_a_posted_form_is_a_400(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("owner"))
    response = client.post("/billing/formula", {"type": "a\x00b", "cpu": "1"})
    assert response.status_code == 400
    assert "type" in response.content.decode()


def test_the_api_gets_json(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("owner"))
    response = client.get("/api/jobs/", {"search": "x\x00"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "search" in response.json()


def test_ordinary_parameters_pass(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("owner"))
    response = client.get("/secure/priorities/", {"page": "1"})
    assert response.status_code < 500
