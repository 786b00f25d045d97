"""Sign-in: Shibboleth-style REMOTE_USER, OIDC claims, LDAP settings, local accounts, lockout."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse

from userportal.auth.identity import axes_username, cluster_username
from userportal.auth.oidc import PortalOIDCBackend, staff_from_claims, username_from_claims

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

SHIB = {
    "PORTAL_REMOTE_USER": True,
    "PORTAL_ALLOWED_REALMS": ["example.org"],
    "PORTAL_STAFF_AFFILIATIONS": ["staff@example.org"],
    "AUTHENTICATION_BACKENDS": [
        "axes.backends.AxesStandaloneBackend",
        "userportal.auth.remote_user.ShibbolethBackend",
        "django.contrib.auth.backends.ModelBackend",
    ],
}


@override_settings(PORTAL_ALLOWED_REALMS=["example.org"])
def test_cluster_username_strips_only_allowed_realms():
    assert cluster_username("alice@example.org") == "alice"
    assert cluster_username("Alice@EXAMPLE.org") == "alice"
    assert cluster_username(" bob ") == "bob"
    assert cluster_username("admin@evil.example") is None
    assert cluster_username("@example.org") is None
    assert cluster_username("") is None
    assert cluster_username("a b") is None


@override_settings(PORTAL_ALLOWED_REALMS=["example.org"])
def test_axes_counts_every_spelling_of_a_name_as_one():
    assert {axes_username(None, {"username": u}) for u in ("owner", "Owner", "owner@example.org")} == {"owner"}


@override_settings(**SHIB)
def test_remote_user_signs_in_with_the_realm_stripped(client):
    response = client.get(reverse("home"), REMOTE_USER="alice@example.org", affiliation="member@example.org")
    assert response.status_code == 200
    user = get_user_model().objects.get(username="alice")
    assert response.wsgi_request.user == user
    assert not user.is_staff


@override_settings(**SHIB)
def test_staff_follows_the_affiliation_both_ways(client):
    client.get(reverse("home"), REMOTE_USER="carol@example.org", affiliation="member@example.org;Staff@example.org")
    assert get_user_model().objects.get(username="carol").is_staff
    # The next request no longer carries the staff affiliation: staff status is removed.
    client.get(reverse("home"), REMOTE_USER="carol@example.org", affiliation="member@example.org")
    assert not get_user_model().objects.get(username="carol").is_staff


@override_settings(**SHIB)
def test_a_superuser_never_signs_in_through_remote_user(client):
    get_user_model().objects.create_superuser("root", password="x")
    response = client.get(reverse("home"), REMOTE_USER="root@example.org", affiliation="staff@example.org")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


@override_settings(**SHIB)
def test_a_foreign_realm_cannot_take_over_a_local_name(client):
    get_user_model().objects.create_user("owner", password="x")
    response = client.get(reverse("home"), REMOTE_USER="owner@evil.example", affiliation="staff@example.org")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("home"), REMOTE_USER="@example.org").status_code == 302
    assert not get_user_model().objects.filter(username="").exists()


@override_settings(**SHIB)
def test_a_request_without_remote_user_is_signed_out(client):
    client.get(reverse("home"), REMOTE_USER="dave@example.org")
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_remote_user_is_ignored_unless_enabled(client):
    response = client.get(reverse("home"), REMOTE_USER="mallory")
    assert response.status_code == 302
    assert not get_user_model().objects.filter(username="mallory").exists()


@override_settings(
    DEBUG=True, PORTAL_DEV_REMOTE_USER="devuser@example.org", PORTAL_DEV_AFFILIATION="staff@example.org", **SHIB
)
def test_development_login_from_the_server_environment(client):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert get_user_model().objects.get(username="devuser").is_staff


@override_settings(DEBUG=False, PORTAL_DEV_REMOTE_USER="devuser@example.org", **SHIB)
def test_development_login_needs_debug(client):
    assert client.get(reverse("home")).status_code == 302


@override_settings(
    OIDC_USERNAME_CLAIM="preferred_username",
    OIDC_STAFF_CLAIM="groups",
    OIDC_STAFF_VALUES=["hpc-staff"],
    PORTAL_ALLOWED_REALMS=["example.org"],
)
def test_oidc_claims_give_username_and_staff():
    claims = {"preferred_username": "alice@example.org", "email": "alice@example.org", "groups": ["hpc-staff", "x"]}
    assert username_from_claims(claims) == "alice"
    assert staff_from_claims(claims) is True
    assert staff_from_claims({"groups": "users"}) is False
    assert staff_from_claims({}) is False
    assert username_from_claims({"preferred_username": "admin@evil.example"}) == ""


@override_settings(OIDC_USERNAME_CLAIM="email", PORTAL_ALLOWED_REALMS=["example.org"])
def test_oidc_email_claim_must_be_verified():
    assert username_from_claims({"email": "alice@example.org", "email_verified": True}) == "alice"
    assert username_from_claims({"email": "alice@example.org"}) == ""


@override_settings(
    OIDC_USERNAME_CLAIM="preferred_username",
    OIDC_STAFF_CLAIM="groups",
    OIDC_STAFF_VALUES=["hpc-staff"],
    OIDC_RP_CLIENT_ID="portal",
    OIDC_RP_CLIENT_SECRET="s",
    OIDC_OP_TOKEN_ENDPOINT="http://127.0.0.1:9/token",
    OIDC_OP_USER_ENDPOINT="http://127.0.0.1:9/me",
    OIDC_OP_JWKS_ENDPOINT="http://127.0.0.1:9/jwks",
)
def test_oidc_backend_creates_then_updates_the_user():
    backend = PortalOIDCBackend()
    user = backend.create_user({"preferred_username": "erin", "email": "erin@example.org", "groups": ["hpc-staff"]})
    assert (user.username, user.email, user.is_staff) == ("erin", "erin@example.org", True)
    backend.update_user(user, {"preferred_username": "erin", "groups": []})
    user.refresh_from_db()
    assert user.is_staff is False
    assert backend.verify_claims({"email": "x@y"}) is False
    assert backend.create_user({"preferred_username": "fay", "given_name": None}).first_name == ""


def test_ldap_settings_from_the_environment(monkeypatch):
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

    from userportal.auth.ldap_settings import ldap_settings

    monkeypatch.setenv("AUTH_LDAP_USER_SEARCH_BASE", "ou=people,dc=example,dc=org")
    monkeypatch.setenv("AUTH_LDAP_GROUP_SEARCH_BASE", "ou=groups,dc=example,dc=org")
    monkeypatch.setenv("AUTH_LDAP_STAFF_GROUP_DN", "cn=hpc-staff,ou=groups,dc=example,dc=org")
    result = ldap_settings()
    assert isinstance(result["AUTH_LDAP_USER_SEARCH"], LDAPSearch)
    assert isinstance(result["AUTH_LDAP_GROUP_TYPE"], GroupOfNamesType)
    assert result["AUTH_LDAP_USER_FLAGS_BY_GROUP"] == {"is_staff": "cn=hpc-staff,ou=groups,dc=example,dc=org"}


def test_local_account_signs_in_with_the_form():
    get_user_model().objects.create_user("frank", password="right-password")
    client = Client()
    response = client.post(reverse("login"), {"username": "frank", "password": "right-password"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_bad_password_shows_an_error_on_the_form():
    get_user_model().objects.create_user("gina", password="right-password")
    response = Client().post(reverse("login"), {"username": "gina", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


@override_settings(AXES_FAILURE_LIMIT=3, PORTAL_ALLOWED_REALMS=["example.org"])
def test_other_spellings_of_a_locked_name_stay_locked():
    get_user_model().objects.create_user("jack", password="right-password")
    client = Client()
    for _ in range(3):
        client.post(reverse("login"), {"username": "jack", "password": "wrong"})
    for spelling in ("Jack", "jack@example.org", "JACK"):
        response = client.post(reverse("login"), {"username": spelling, "password": "right-password"})
        assert response.status_code == 429, spelling


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_failures_lock_the_account_out():
    get_user_model().objects.create_user("henry", password="right-password")
    client = Client()
    for _ in range(3):
        client.post(reverse("login"), {"username": "henry", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "henry", "password": "right-password"})
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
