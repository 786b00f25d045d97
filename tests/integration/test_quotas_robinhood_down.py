"""The quotas page against the stack with Robinhood's database unreachable: a notice, not a 500."""

from __future__ import annotations

import copy

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db(databases=["default", "slurm", "robinhood"])


@pytest.fixture
def robinhood_down(stack_dir):
    """Swap the `robinhood` connection for one to a closed port (a real driver error)."""
    original = connections["robinhood"]
    settings_dict = copy.deepcopy(original.settings_dict)
    assert settings_dict["ENGINE"].endswith("mysql"), "the stack's Robinhood is MariaDB"
    settings_dict["PORT"] = 9
    settings_dict["HOST"] = "127.0.0.1"
    broken = original.__class__(settings_dict, alias="robinhood")
    connections["robinhood"] = broken
    yield
    broken.close()
    connections["robinhood"] = original


def test_quotas_page_works_against_the_stack(stack_dir, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("alice"))
    response = client.get(reverse("quotas:user", kwargs={"username": "alice"}))
    assert response.status_code == 200
    assert "alert-warning" not in response.content.decode()


def test_quotas_page_renders_a_notice_when_robinhood_is_down(robinhood_down, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("alice"))
    response = client.get(reverse("quotas:user", kwargs={"username": "alice"}))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="alert alert-warning" role="alert"' in html
    assert "Robinhood" in html or "storage" in html.lower()
