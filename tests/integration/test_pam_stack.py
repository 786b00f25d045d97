"""PAM sign-in against the stack's Unix users: pam_unix through /etc/pam.d/login, with their Unix
passwords (<user>-unix-pw, other than their LDAP and OIDC ones), through Apache's sign-in form
(the mod_wsgi daemon reads /etc/shadow as a member of the group shadow). The stack's portal
database shows which backend accepted the password, the audit entries and django-axes' count."""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest
import requests
from stack_portal import connect_portal_db

from userportal.auth.unix_pam import pam_check

BACKEND = "userportal.auth.unix_pam.PortalPAMBackend"


def unix_password(user: str) -> str:
    return f"{user}-unix-pw"  # scripts/stack.d/lib.sh, docs/stack.md


@pytest.fixture(scope="module")
def apache(stack_dir) -> str:
    return os.environ["PORTAL_STACK_URL"]


def form_sign_in(apache: str, username: str, password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    page = session.get(f"{apache}/accounts/login/", timeout=30)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{apache}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/"},
        headers={"Referer": f"{apache}/accounts/login/"},
        timeout=60,  # pam_faildelay holds a wrong password for 3 s
    )
    return session, response


def portal_db_rows(stack_dir, query: str, *params) -> list[tuple]:
    connection = connect_portal_db(stack_dir)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return list(cursor.fetchall())
    finally:
        connection.close()


def last_login_entry(stack_dir, username: str) -> dict:
    rows = portal_db_rows(
        stack_dir,
        "SELECT extra FROM userportal_auditentry WHERE action = 'auth.login' AND actor = %s ORDER BY seq DESC LIMIT 1",
        username,
    )
    assert rows, f"no auth.login entry for {username}"
    extra = rows[0][0]
    return json.loads(extra) if isinstance(extra, str | bytes) else extra


def failures(stack_dir, username: str) -> int:
    rows = portal_db_rows(
        stack_dir, "SELECT COALESCE(SUM(failures_since_start), 0) FROM axes_accessattempt WHERE username = %s", username
    )
    return int(rows[0][0])


def test_pam_unix_knows_the_stack_users_passwords(stack_dir):
    assert pam_check("alice", unix_password("alice"), "login")[0] is True
    accepted, code, reason = pam_check("alice", "alice-pw", "login")  # the LDAP password is not the Unix one
    assert (accepted, code) == (False, 7), reason
    assert pam_check("jobqueue", "", "login")[0] is False  # a service user without a password


def test_apache_signs_a_unix_user_in_through_pam(apache, stack_dir):
    session, response = form_sign_in(apache, "carol", unix_password("carol"))
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302]
    assert "welcome, carol" in response.text.lower()
    assert last_login_entry(stack_dir, "carol")["backend"] == BACKEND  # neither LDAP nor a local password
    assert "welcome, carol" in session.get(f"{apache}/", timeout=30).text.lower()  # the session holds


def test_apache_refuses_a_wrong_unix_password_and_axes_counts_it(apache, stack_dir):
    marker = f"wrong-{uuid.uuid4().hex[:8]}"
    before = failures(stack_dir, "dave")
    _, refused = form_sign_in(apache, "dave", marker)
    assert refused.status_code == 200
    assert "Please enter a correct username and password" in refused.text
    assert failures(stack_dir, "dave") == before + 1
    rows = portal_db_rows(
        stack_dir,
        "SELECT status FROM userportal_auditentry WHERE action = 'auth.login_failed' AND actor = 'dave' "
        "ORDER BY seq DESC LIMIT 1",
    )
    assert rows == [("failed",)]
    # The right password signs dave in (no Slurm association needed) and clears the count.
    _, response = form_sign_in(apache, "dave", unix_password("dave"))
    assert "welcome, dave" in response.text.lower()
    assert last_login_entry(stack_dir, "dave")["backend"] == BACKEND
    assert failures(stack_dir, "dave") == 0
