"""Slurm AdminLevel as the billing role, against the stack: the level set with the stack's sacctmgr, read
from slurmdbd's user_table and from sacctmgr, and a Shibboleth sign-in through Apache (whose portal has
BILLING_ROLES_FROM_SLURM=true, scripts/stack.d/portal.sh) opening the billing staff pages to an
Operator read-only and the admin actions to an Administrator. carol's level is restored after."""

from __future__ import annotations

import os
import re

import pytest
import requests
from django.contrib.auth import get_user_model

from billing import roles
from slurm import sacctmgr
from slurm.admin_levels import elevated_levels
from slurm.models import AdminLevel

# transaction=True: each read of slurmdbd sees what sacctmgr just committed (no snapshot).
pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm"], transaction=True)]

USER = "carol"  # a cluster user who is not portal staff


@pytest.fixture
def level(slurm_cmd, settings):
    settings.SLURM_SACCTMGR = "sacctmgr"
    sacctmgr.get_client.cache_clear()

    def set_level(word: str) -> None:
        slurm_cmd(["sacctmgr", "-i", "modify", "user", USER, "set", f"adminlevel={word}"])

    yield set_level
    set_level("None")
    sacctmgr.get_client.cache_clear()


@pytest.fixture(scope="module")
def apache(stack_dir) -> str:
    return os.environ["PORTAL_STACK_URL"]


def sign_in(apache: str) -> requests.Session:
    """A new Shibboleth session as carol (a sign-in each time: the roles are read then)."""
    session = requests.Session()
    session.headers.update({"X-Test-Remote-User": f"{USER}@example.org", "X-Test-Affiliation": "member@example.org"})
    home = session.get(f"{apache}/", timeout=30)
    assert home.status_code == 200
    assert '<span class="badge text-bg-info">staff</span>' not in home.text
    return session


def post(session: requests.Session, url: str) -> requests.Response:
    token = session.cookies.get("csrftoken")
    assert token, "no CSRF cookie: the home page has the sign-out form"
    return session.post(url, headers={"X-CSRFToken": token, "Referer": url}, timeout=30, allow_redirects=False)


def test_the_level_is_read_from_slurmdbd_and_from_sacctmgr(level):
    assert USER not in elevated_levels("database", [USER])
    level("Operator")
    assert elevated_levels("database", [USER]) == {USER: AdminLevel.OPERATOR}
    assert elevated_levels("sacctmgr", [USER]) == {USER: AdminLevel.OPERATOR}
    level("Administrator")
    assert elevated_levels("database")[USER] == AdminLevel.ADMINISTRATOR
    assert elevated_levels("sacctmgr")[USER] == AdminLevel.ADMINISTRATOR
    assert elevated_levels("database")["root"] == AdminLevel.ADMINISTRATOR


@pytest.mark.parametrize("source", ["database", "sacctmgr"])
def test_the_periodic_check_follows_sacctmgr(level, settings, source):
    settings.BILLING_ROLES_FROM_SLURM = True
    settings.BILLING_ROLES_SOURCE = source
    user = get_user_model().objects.create_user(USER)
    level("Operator")
    assert roles.sync_all()[USER] == roles.OPERATORS
    level("Administrator")
    assert roles.sync_all()[USER] == roles.ADMINISTRATORS
    level("None")
    assert roles.sync_all() == {USER: ""}
    assert not user.groups.exists()


def test_apache_opens_the_billing_staff_pages_to_operators_read_only(level, apache):
    paid = f"{apache}/billing/staff/receipts/999999999/paid"  # no such receipt: 404 once allowed
    session = sign_in(apache)
    assert session.get(f"{apache}/billing/staff/usage/", timeout=60).status_code == 403
    level("Operator")
    session = sign_in(apache)
    for page in ("usage/", "rates/", "receipts/", "charts/", "paid.csv", "balance.json"):
        assert session.get(f"{apache}/billing/staff/{page}", timeout=60).status_code == 200, page
    rates = session.get(f"{apache}/billing/staff/rates/", timeout=60).text
    assert "Read-only: changing rates" in rates
    assert not re.search(r'<form method="post" action="/billing/formula"', rates)
    assert post(session, paid).status_code == 403  # an admin action, refused
    assert session.get(f"{apache}/billing/staff/audit/", timeout=60).status_code == 403  # staff's
    assert session.get(f"{apache}/secure/top/", timeout=60).status_code == 403

    level("Administrator")
    session = sign_in(apache)
    assert (
        '<form method="post" action="/billing/formula"'
        in session.get(f"{apache}/billing/staff/rates/", timeout=60).text
    )
    assert post(session, paid).status_code == 404  # allowed: only the receipt is missing

    level("None")
    session = sign_in(apache)  # the sign-in takes the role away
    assert session.get(f"{apache}/billing/staff/usage/", timeout=60).status_code == 403
