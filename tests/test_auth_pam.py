"""PAM password login (userportal.auth.unix_pam): the sign-in form, lockout and audit, staff groups.

PAM itself is replaced by a fake here (its answers as libpam gives them); the library is called
for real in test_the_library_answers_no_for_an_unknown_user, and pam_unix with real Unix passwords
in tests/integration/test_login.py (through Apache).
"""

from __future__ import annotations

import logging

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse
from test_settings import _settings_in_subprocess

from userportal.auth import unix_pam
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

BACKEND = "userportal.auth.unix_pam.PortalPAMBackend"
PAM = {
    "PAM_ENABLED": True,
    "PAM_SERVICE": "portal-test",
    "PAM_STAFF_GROUPS": [],
    "PORTAL_ALLOWED_REALMS": ["example.org"],
    "AUTHENTICATION_BACKENDS": [
        "axes.backends.AxesStandaloneBackend",
        BACKEND,
        "django.contrib.auth.backends.ModelBackend",
    ],
}


@pytest.fixture
def pam(monkeypatch):
    """A fake PAM: alice's Unix password is unix-pw; every call is recorded."""
    calls: list[tuple[str, str, str]] = []

    def check(username: str, password: str, service: str) -> tuple[bool, int, str]:
        calls.append((username, password, service))
        if (username, password) == ("alice", "unix-pw"):
            return True, 0, "Success"
        return False, 7, "Authentication failure"

    monkeypatch.setattr(unix_pam, "pam_check", check)
    return calls


def sign_in(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


@override_settings(**PAM)
def test_a_unix_password_signs_in_and_creates_the_account(pam):
    client = Client()
    response = sign_in(client, "alice", "unix-pw")
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert pam == [("alice", "unix-pw", "portal-test")]
    user = get_user_model().objects.get(username="alice")
    assert not user.has_usable_password()  # not a local account: the next sign-in asks PAM again
    assert client.session["_auth_user_backend"] == BACKEND
    entry = AuditEntry.objects.filter(action="auth.login").latest("seq")
    assert (entry.actor, entry.extra["backend"]) == ("alice", BACKEND)
    assert client.get(reverse("home")).status_code == 200


@override_settings(**PAM)
def test_the_realm_is_stripped_for_allowed_realms_only(pam):
    assert sign_in(Client(), "Alice@example.org", "unix-pw").status_code == 302
    assert sign_in(Client(), "alice@evil.example", "unix-pw").status_code == 200
    assert [call[0] for call in pam] == ["alice"]  # the foreign realm never reached PAM


@override_settings(**PAM)
def test_a_wrong_password_is_refused_audited_and_counted(pam, caplog):
    caplog.set_level(logging.INFO, logger="userportal.auth.unix_pam")
    client = Client()
    response = sign_in(client, "alice", "wrong")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="auth.login_failed", actor="alice", status="failed").exists()
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 1
    assert "PAM service portal-test refused alice: Authentication failure (code 7)" in caplog.text


@override_settings(AXES_FAILURE_LIMIT=3, **PAM)
def test_repeated_failures_lock_the_name_out_before_pam_is_asked(pam):
    client = Client()
    for _ in range(3):
        sign_in(client, "alice", "wrong")
    locked = sign_in(client, "alice", "unix-pw")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert len(pam) == 3  # the locked attempt never reached PAM
    assert AuditEntry.objects.filter(action="auth.lockout", actor="alice").exists()


@override_settings(**PAM)
def test_local_accounts_never_sign_in_through_pam(pam):
    get_user_model().objects.create_superuser("root", password="local-root-pw")
    get_user_model().objects.create_user("frank", password="local-pw")
    assert sign_in(Client(), "root", "unix-pw").status_code == 200
    assert sign_in(Client(), "frank", "unix-pw").status_code == 200
    assert pam == []
    assert sign_in(Client(), "frank", "local-pw").status_code == 302  # its own password still works


@override_settings(**PAM)
def test_an_inactive_account_stays_out(pam):
    get_user_model().objects.create_user("alice", is_active=False)
    assert sign_in(Client(), "alice", "unix-pw").status_code == 200


@override_settings(**PAM)
def test_an_overlong_password_never_reaches_pam(pam):
    assert sign_in(Client(), "alice", "x" * 5000).status_code == 200
    assert pam == []


@override_settings(**{**PAM, "PAM_STAFF_GROUPS": ["hpc-staff"]})
def test_staff_follows_the_unix_groups_at_each_sign_in(pam, monkeypatch):
    groups = {"alice": {"alice", "hpc-staff"}}
    monkeypatch.setattr(unix_pam, "unix_groups", lambda name: groups.get(name, set()))
    sign_in(Client(), "alice", "unix-pw")
    assert get_user_model().objects.get(username="alice").is_staff
    groups["alice"] = {"alice"}
    sign_in(Client(), "alice", "unix-pw")
    assert not get_user_model().objects.get(username="alice").is_staff


@override_settings(**PAM)
def test_staff_is_left_alone_without_staff_groups(pam, monkeypatch):
    get_user_model().objects.create_user("alice", is_staff=True)
    monkeypatch.setattr(unix_pam, "unix_groups", lambda name: pytest.fail("groups read"))
    assert sign_in(Client(), "alice", "unix-pw").status_code == 302
    assert get_user_model().objects.get(username="alice").is_staff


@override_settings(**PAM)
def test_a_missing_pam_library_is_an_error_line_not_a_500(monkeypatch, caplog):
    def broken(username: str, password: str, service: str) -> tuple[bool, int, str]:
        raise OSError("libpam.so.0: cannot open shared object file")

    monkeypatch.setattr(unix_pam, "pam_check", broken)
    response = sign_in(Client(), "alice", "unix-pw")
    assert response.status_code == 200
    assert "PAM sign-in unavailable (PAM_SERVICE=portal-test): libpam.so.0" in caplog.text


def test_the_library_answers_no_for_an_unknown_user():
    accepted, code, reason = unix_pam.pam_check("no-such-user-h17", "a-password", "login")
    assert accepted is False
    assert code != 0
    assert reason


def test_unix_groups_come_from_nss():
    assert "root" in unix_pam.unix_groups("root")
    assert unix_pam.unix_groups("no-such-user-h17") == set()


@override_settings(**PAM)
def test_the_sign_in_form_asks_for_the_cluster_username():
    assert "Cluster username" in Client().get(reverse("login")).content.decode()


def test_the_setting_adds_the_backend_and_checks_the_service_name(tmp_path):
    show = "from django.conf import settings; print(settings.AUTHENTICATION_BACKENDS[-2], settings.PAM_SERVICE)"
    on = _settings_in_subprocess(show, PORTAL_DEBUG="true", PORTAL_VAR_DIR=str(tmp_path), PORTAL_PAM="true")
    assert on.stdout.split() == [BACKEND, "login"], on.stderr
    bad = _settings_in_subprocess(
        PORTAL_DEBUG="true", PORTAL_VAR_DIR=str(tmp_path), PORTAL_PAM="true", PAM_SERVICE="../x"
    )
    assert "PAM_SERVICE='../x' is not a file name in /etc/pam.d" in bad.stderr
