"""External identities are bound to one account: (realm, name) for Shibboleth, (issuer, subject)
for OpenID Connect. Two people never share an account, and no external identity ever opens a
local account (one with a password, a superuser, a service account)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.test import Client, override_settings
from django.urls import reverse

from userportal.auth.oidc import PortalOIDCBackend
from userportal.models import AuditEntry, ExternalIdentity

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

SHIB = {
    "PORTAL_REMOTE_USER": True,
    "PORTAL_ALLOWED_REALMS": ["example.org", "partner.edu"],
    "PORTAL_STAFF_AFFILIATIONS": ["staff@example.org"],
    "AUTHENTICATION_BACKENDS": [
        "axes.backends.AxesStandaloneBackend",
        "userportal.auth.remote_user.ShibbolethBackend",
        "django.contrib.auth.backends.ModelBackend",
    ],
}
OIDC = {
    "OIDC_USERNAME_CLAIM": "preferred_username",
    "OIDC_STAFF_CLAIM": "groups",
    "OIDC_STAFF_VALUES": ["hpc-staff"],
    "OIDC_RP_CLIENT_ID": "portal",
    "OIDC_RP_CLIENT_SECRET": "s",
    "OIDC_OP_TOKEN_ENDPOINT": "http://127.0.0.1:9/token",
    "OIDC_OP_USER_ENDPOINT": "http://127.0.0.1:9/me",
    "OIDC_OP_JWKS_ENDPOINT": "http://127.0.0.1:9/jwks",
    "PORTAL_ALLOWED_REALMS": ["example.org"],
}
ISSUER = "https://sso.example.org/realms/hpc"


def signed_in_as(remote_user: str, client: Client | None = None) -> str | None:
    client = client or Client()
    response = client.get(reverse("home"), REMOTE_USER=remote_user, affiliation="member@example.org")
    user = response.wsgi_request.user
    return user.get_username() if user.is_authenticated else None


def oidc_sign_in(claims: dict, *, sub: str, issuer: str = ISSUER, userinfo_sub: str | None = None):
    """The backend's code path after the ID token was verified: userinfo, binding, create or update."""
    backend = PortalOIDCBackend()
    backend.get_userinfo = lambda access_token, id_token, payload: {"sub": userinfo_sub or sub, **claims}
    try:
        return backend.get_or_create_user("access", "id", {"iss": issuer, "sub": sub})
    except SuspiciousOperation:  # what the library's authenticate() turns into None
        return None


# --- Shibboleth (REMOTE_USER) ----------------------------------------------------------------
@override_settings(**SHIB)
def test_the_same_name_in_two_realms_is_two_people_not_one_account():
    assert signed_in_as("alice@example.org") == "alice"
    assert signed_in_as("alice@partner.edu") is None  # refused: "alice" is someone else's
    assert signed_in_as("alice@example.org") == "alice"
    assert AuditEntry.objects.filter(action="auth.identity_refused", actor="alice").count() == 1


@override_settings(**SHIB)
def test_remote_user_binds_the_realm_and_name():
    signed_in_as("Alice@Example.org")
    identity = ExternalIdentity.objects.get()
    assert (identity.kind, identity.issuer, identity.subject, identity.user.username) == (
        "remote_user",
        "example.org",
        "alice",
        "alice",
    )


@override_settings(**SHIB)
def test_a_session_does_not_carry_over_to_another_identity_with_the_same_name():
    client = Client()
    assert signed_in_as("alice@example.org", client) == "alice"
    assert signed_in_as("alice@partner.edu", client) is None


@override_settings(**SHIB)
def test_a_name_without_a_realm_is_refused():
    assert signed_in_as("alice") is None
    assert not get_user_model().objects.filter(username="alice").exists()


@override_settings(**SHIB, PORTAL_ALLOW_BARE_USERNAMES=True)
def test_a_name_without_a_realm_is_accepted_when_the_setting_allows_it():
    assert signed_in_as("alice") == "alice"
    assert ExternalIdentity.objects.get().issuer == ""


@override_settings(**SHIB)
@pytest.mark.parametrize("is_staff", [True, False])
def test_remote_user_never_opens_a_local_account_with_a_password(is_staff):
    get_user_model().objects.create_user("owner", password="local-password", is_staff=is_staff)
    assert signed_in_as("owner@example.org") is None
    assert not ExternalIdentity.objects.exists()


@override_settings(**SHIB)
def test_an_account_an_external_sign_in_made_earlier_is_adopted_once():
    user = get_user_model().objects.create_user("dora")  # no password: made by an earlier Shibboleth sign-in
    assert not user.has_usable_password()
    assert signed_in_as("dora@partner.edu") == "dora"
    assert ExternalIdentity.objects.get(user=user).issuer == "partner.edu"
    assert signed_in_as("dora@example.org") is None


# --- OpenID Connect ----------------------------------------------------------------------------
@override_settings(**OIDC)
def test_oidc_creates_then_updates_the_user_bound_to_issuer_and_subject():
    user = oidc_sign_in({"preferred_username": "erin", "email": "erin@example.org", "groups": ["hpc-staff"]}, sub="s1")
    assert (user.username, user.email, user.is_staff) == ("erin", "erin@example.org", True)
    identity = ExternalIdentity.objects.get()
    assert (identity.kind, identity.issuer, identity.subject, identity.user) == ("oidc", ISSUER, "s1", user)
    again = oidc_sign_in({"preferred_username": "erin", "email": "new@example.org", "groups": []}, sub="s1")
    assert again == user
    user.refresh_from_db()
    assert (user.email, user.is_staff) == ("new@example.org", False)
    # A renamed account at the provider stays the same person here.
    assert oidc_sign_in({"preferred_username": "erin2"}, sub="s1") == user
    assert oidc_sign_in({"preferred_username": "fay", "given_name": None}, sub="s9").first_name == ""


@override_settings(**OIDC)
def test_oidc_a_second_subject_with_a_taken_username_is_refused():
    first = oidc_sign_in({"preferred_username": "erin"}, sub="s1")
    assert first is not None
    assert oidc_sign_in({"preferred_username": "erin"}, sub="s2") is None
    assert oidc_sign_in({"preferred_username": "erin"}, sub="s1", issuer="https://other.example") is None
    assert ExternalIdentity.objects.count() == 1


@override_settings(**OIDC)
@pytest.mark.parametrize("kind", ["staff", "superuser", "plain"])
def test_oidc_never_opens_a_local_account(kind):
    model = get_user_model()
    if kind == "superuser":
        model.objects.create_superuser("boss", password="x")
    else:
        model.objects.create_user("boss", password="x", is_staff=kind == "staff")
    assert oidc_sign_in({"preferred_username": "boss", "groups": ["hpc-staff"]}, sub="s1") is None
    assert not ExternalIdentity.objects.exists()


@override_settings(**OIDC)
def test_oidc_refuses_userinfo_about_another_subject_or_no_subject():
    assert oidc_sign_in({"preferred_username": "erin"}, sub="s1", userinfo_sub="s2") is None
    assert oidc_sign_in({"preferred_username": "erin"}, sub="") is None
    assert oidc_sign_in({"email": "x@y"}, sub="s3") is None  # no username claim


@override_settings(**SHIB, **{k: v for k, v in OIDC.items() if k != "PORTAL_ALLOWED_REALMS"})
def test_a_shibboleth_account_is_not_opened_through_oidc_by_default():
    assert signed_in_as("alice@example.org") == "alice"
    assert oidc_sign_in({"preferred_username": "alice"}, sub="a1") is None
    with override_settings(PORTAL_LINK_IDENTITY_SOURCES=True):
        assert oidc_sign_in({"preferred_username": "alice"}, sub="a1").username == "alice"
        assert oidc_sign_in({"preferred_username": "alice"}, sub="a2") is None  # still one OIDC identity
    assert ExternalIdentity.objects.filter(user__username="alice").count() == 2


# --- LDAP ----------------------------------------------------------------------------------------
def test_ldap_never_opens_a_local_account_with_a_password(rf, monkeypatch):
    from django_auth_ldap.backend import LDAPBackend

    from userportal.auth.ldap import PortalLDAPBackend

    model = get_user_model()
    monkeypatch.setattr(LDAPBackend, "authenticate", lambda self, request, username, password, **kw: username)
    model.objects.create_user("bob", password="local-password", is_staff=True)
    model.objects.create_user("carl")  # made by an earlier directory sign-in: no password
    backend = PortalLDAPBackend()
    assert backend.authenticate(rf.post("/"), username="bob", password="directory-password") is None
    assert backend.authenticate(rf.post("/"), username="carl", password="directory-password") == "carl"
