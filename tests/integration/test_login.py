"""Signing in against the stack's real components: Apache + mod_wsgi with Shibboleth-style
attributes, the OpenID Connect provider (authorization-code flow), and slapd (LDAP)."""

from __future__ import annotations

import html
import os
import re
from urllib.parse import urljoin

import pytest
import requests
from django.contrib.auth import authenticate, get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def ldap_authenticate(username: str, pw: str):
    # django-axes (first backend) needs the request, as the login form passes it.
    request = RequestFactory().post(reverse("login"), REMOTE_ADDR="127.0.0.1")
    return authenticate(request=request, username=username, password=pw)


def password(user: str) -> str:
    return f"{user}-pw"  # the stack's convention (docs/stack.md)


@pytest.fixture(scope="module")
def apache(stack_dir) -> str:
    return os.environ["PORTAL_STACK_URL"]


def welcomed(page: str, user: str) -> bool:
    """The home page greets the user: by the first name a directory or provider gave (Alice), else the username."""
    return re.search(rf"Welcome, {user}\b", page, re.IGNORECASE) is not None


def shib_get(session: requests.Session, url: str, user: str | None, affiliation: str = "") -> requests.Response:
    headers = {}
    if user:
        headers["X-Test-Remote-User"] = user
        headers["X-Test-Affiliation"] = affiliation
    return session.get(url, headers=headers, timeout=30)


# --- Apache + mod_wsgi, REMOTE_USER and affiliation as Shibboleth sets them ------------------
def test_apache_signs_a_user_in_from_remote_user(apache):
    session = requests.Session()
    response = shib_get(session, f"{apache}/", "alice@example.org", "member@example.org")
    assert response.status_code == 200
    assert "alice" in response.text
    assert welcomed(response.text, "alice")
    assert '<span class="badge text-bg-info">staff</span>' not in response.text


def test_apache_staff_follows_the_affiliation(apache):
    session = requests.Session()
    staff = shib_get(session, f"{apache}/", "staffer@example.org", "staff@example.org;member@example.org")
    assert staff.status_code == 200
    assert '<span class="badge text-bg-info">staff</span>' in staff.text
    # The same session, the staff affiliation gone: staff status is removed on this request.
    again = shib_get(session, f"{apache}/", "staffer@example.org", "member@example.org")
    assert '<span class="badge text-bg-info">staff</span>' not in again.text


def test_apache_owner_rule_applies_to_remote_users(apache):
    session = requests.Session()
    own = shib_get(session, f"{apache}/secure/jobstats/bob/", "bob@example.org", "member@example.org")
    assert own.status_code == 200
    other = shib_get(session, f"{apache}/secure/jobstats/alice/", "bob@example.org", "member@example.org")
    assert other.status_code == 403


def test_apache_secure_area_needs_a_shibboleth_session(apache):
    assert requests.get(f"{apache}/secure/jobstats/", timeout=30).status_code in (401, 403)


def test_apache_serves_static_files_and_health(apache):
    css = requests.get(f"{apache}/static/vendor/bootstrap/css/bootstrap.min.css", timeout=30)
    assert css.status_code == 200
    assert "text/css" in css.headers["Content-Type"]
    health = requests.get(f"{apache}/health/", timeout=30).json()
    assert health["sources"]["slurmdb"]["ok"] is True
    assert health["sources"]["prometheus"]["ok"] is True


# --- OpenID Connect: a real authorization-code flow through Apache ---------------------------
def oidc_login(apache: str, user: str, pw: str) -> requests.Response:
    session = requests.Session()
    page = session.get(f"{apache}/oidc/authenticate/?next=/", timeout=30)
    assert page.status_code == 200, page.text[:300]
    assert 'name="password"' in page.text, page.url  # the provider's login form
    action = re.search(r'<form method="post" action="([^"]*)"', page.text).group(1)
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    form = {k: html.unescape(v) for k, v in form.items()}
    form.update(username=user, password=pw)
    return session.post(urljoin(page.url, action), data=form, timeout=30)


def test_oidc_code_flow_signs_a_user_in(apache):
    response = oidc_login(apache, "alice", password("alice"))
    assert response.status_code == 200
    assert response.url.rstrip("/") == apache.rstrip("/")
    assert welcomed(response.text, "alice")
    assert any("/oidc/callback/" in r.url for r in response.history)


def test_oidc_staff_comes_from_the_groups_claim(apache):
    response = oidc_login(apache, "staffer", password("staffer"))
    assert welcomed(response.text, "staffer")
    assert '<span class="badge text-bg-info">staff</span>' in response.text


def test_oidc_wrong_password_stays_at_the_provider(apache):
    response = oidc_login(apache, "alice", "wrong")
    assert "Welcome" not in response.text
    assert 'name="password"' in response.text


# --- LDAP against slapd ----------------------------------------------------------------------
def test_ldap_good_password(stack_dir):
    user = ldap_authenticate("alice", password("alice"))
    assert user is not None
    assert user.username == "alice"
    assert user.is_staff is False
    assert user.email  # attributes copied from the directory


def test_ldap_staff_group(stack_dir):
    user = ldap_authenticate("staffer", password("staffer"))
    assert user is not None
    assert user.is_staff is True


def test_ldap_bad_password(stack_dir):
    assert ldap_authenticate("alice", "wrong") is None


def test_ldap_login_form_and_lockout(stack_dir, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    ok = client.post(reverse("login"), {"username": "bob", "password": password("bob")})
    assert ok.status_code == 302
    client.logout()
    for _ in range(3):
        client.post(reverse("login"), {"username": "carol", "password": "wrong"})
    locked = client.post(reverse("login"), {"username": "carol", "password": password("carol")})
    assert locked.status_code == 429
    assert not get_user_model().objects.filter(username="carol", last_login__isnull=False).exists()
