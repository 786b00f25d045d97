"""The base layout, the home page, health, errors and the API schema."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_home_shows_one_card_per_enabled_module(personas, client):
    client.force_login(personas.owner)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="card-jobstats"' in html
    assert '<main id="main"' in html
    assert 'href="#main"' in html  # skip link
    assert "cdn" not in html.lower()


def test_base_layout_has_the_language_switch_and_theme_toggle(personas, client):
    client.force_login(personas.owner)
    html = client.get(reverse("home")).content.decode()
    assert 'name="language"' in html
    for code in ("en", "fr", "th"):
        assert f'value="{code}"' in html
    assert 'id="theme-toggle"' in html


def test_pages_send_a_content_security_policy(personas, client):
    client.force_login(personas.owner)
    response = client.get(reverse("home"))
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_language_switch_translates_the_page(personas, client):
    client.force_login(personas.owner)
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    html = client.get(reverse("home")).content.decode()
    assert 'lang="fr"' in html
    assert "Se déconnecter" in html
    client.post(reverse("set_language"), {"language": "th", "next": "/"})
    html = client.get(reverse("home")).content.decode()
    assert 'lang="th"' in html
    assert "ออกจากระบบ" in html


def test_single_cluster_site_has_no_cluster_chooser(personas, client):
    client.force_login(personas.owner)
    assert 'name="cluster"' not in client.get(reverse("home")).content.decode()


@override_settings(SLURM_CLUSTERS=["testcluster", "second"])
def test_several_clusters_show_a_chooser_that_sticks(personas, client):
    client.force_login(personas.owner)
    assert 'name="cluster"' in client.get(reverse("home")).content.decode()
    client.post(reverse("choose_cluster"), {"cluster": "second", "next": "/"})
    assert client.session["portal_cluster"] == "second"
    client.post(reverse("choose_cluster"), {"cluster": "nosuch", "next": "https://evil.example/"})
    assert client.session["portal_cluster"] == "second"


def test_health_reports_each_source(client):
    response = client.get(reverse("health"))
    body = json.loads(response.content)
    assert response.status_code == 200
    assert set(body["sources"]) == {"portal_db", "slurmdb", "prometheus", "redis"}
    assert body["sources"]["portal_db"]["ok"] is True
    assert body["sources"]["prometheus"]["ok"] is False  # nothing listens in unit tests
    assert body["status"] == "degraded"
    assert "detail" not in body["sources"]["prometheus"]  # details for staff only


def test_health_details_for_staff(personas, client):
    client.force_login(personas.staff)
    body = json.loads(client.get(reverse("health")).content)
    assert "detail" in body["sources"]["prometheus"]


def test_unknown_api_path_is_a_json_404(personas, client):
    client.force_login(personas.owner)
    response = client.get("/api/nosuch/")
    assert response.status_code == 404
    assert json.loads(response.content)["status"] == 404


def test_unknown_page_is_an_html_404(personas, client):
    client.force_login(personas.owner)
    response = client.get("/nosuch/")
    assert response.status_code == 404
    assert "<main" in response.content.decode()


def test_openapi_schema_is_served(personas, client):
    client.force_login(personas.owner)
    response = client.get(reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert json.loads(response.content)["openapi"].startswith("3.")
    ui = client.get(reverse("schema-ui"))
    assert ui.status_code == 200
    assert "cdn" not in ui.content.decode().lower()


def test_anonymous_api_schema_request_is_refused_in_json():
    response = Client().get(reverse("schema"))
    assert response.status_code in (401, 403)


def test_robots(client):
    assert "Disallow: /" in client.get("/robots.txt").content.decode()
