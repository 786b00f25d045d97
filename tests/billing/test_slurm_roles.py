"""Slurm AdminLevel as the billing role (billing.roles, BILLING_ROLES_FROM_SLURM): Operator reads the
billing staff pages, Administrator also changes rates and marks receipts paid; set at sign-in and by
the periodic check, from the accounting database's user_table or from sacctmgr."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from billing import roles
from billing.models import Rate, Receipt
from billing.tasks import sync_slurm_roles
from slurm import sacctmgr
from slurm.commands import CommandResult, SlurmCommandError
from slurm.models import SlurmUser
from slurm.router import allow_writes

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

STAFF_PAGES = ("staff_rates", "staff_usage", "staff_receipts", "staff_charts", "paid_csv", "balance")


@pytest.fixture
def on(settings):
    settings.BILLING_ROLES_FROM_SLURM = True
    settings.BILLING_ROLES_SOURCE = "database"
    return settings


@pytest.fixture
def receipt(personas):
    return Receipt.objects.create(
        username="member", cluster="testcluster", currency="THB", total=0,
        period_start="2026-01-01T00:00:00Z", period_end="2026-01-02T00:00:00Z",
    )  # fmt: skip


def set_level(name: str, level: int) -> None:
    with allow_writes():
        SlurmUser.objects.using("slurm").filter(name=name).update(admin_level=level)


def groups_of(user) -> set[str]:
    return set(user.groups.filter(name__in=list(roles.GROUPS)).values_list("name", flat=True))


def post_rate(client, price: str = "9"):
    return client.post(
        reverse("billing:formula"), json.dumps({"type": "gov", "cpu": price}), content_type="application/json"
    )


def test_an_operator_reads_the_billing_staff_pages_and_changes_nothing(client, personas, on, receipt):
    set_level("owner", 2)
    client.force_login(personas.owner)  # not staff
    assert groups_of(personas.owner) == {roles.OPERATORS}
    for name in STAFF_PAGES:
        assert client.get(reverse(f"billing:{name}")).status_code == 200, name
    rates = client.get(reverse("billing:staff_rates")).content
    assert b'action="' + reverse("billing:formula").encode() not in rates
    assert reverse("billing:staff_usage").encode() in rates  # the billing staff navigation
    assert (
        reverse("billing:mark_paid", kwargs={"receipt_id": receipt.pk}).encode()
        not in client.get(reverse("billing:staff_receipts")).content
    )
    assert post_rate(client).status_code == 403
    assert client.post(reverse("billing:mark_paid", kwargs={"receipt_id": receipt.pk})).status_code == 403
    assert Receipt.objects.get(pk=receipt.pk).status == Receipt.Status.PENDING
    assert not Rate.objects.filter(price="9").exists()
    # the audit log and the other staff pages stay staff's
    assert client.get(reverse("billing:staff_audit")).status_code == 403
    assert client.get(reverse("top:index")).status_code == 403


def test_an_administrator_changes_rates_and_marks_receipts_paid(client, personas, on, receipt):
    set_level("owner", 3)
    client.force_login(personas.owner)
    assert groups_of(personas.owner) == {roles.ADMINISTRATORS}
    assert b'action="' + reverse("billing:formula").encode() in client.get(reverse("billing:staff_rates")).content
    assert post_rate(client).status_code == 200
    assert client.post(reverse("billing:mark_paid", kwargs={"receipt_id": receipt.pk})).status_code == 302
    assert Receipt.objects.get(pk=receipt.pk).status == Receipt.Status.PAID


def test_a_user_without_a_level_gets_nothing_and_loses_a_stale_role(client, personas, on):
    roles.sync_all()  # creates the groups
    personas.member.groups.add(Group.objects.get(name=roles.ADMINISTRATORS))
    client.force_login(personas.member)  # Slurm says None: the sign-in takes the role away
    assert groups_of(personas.member) == set()
    assert client.get(reverse("billing:staff_usage")).status_code == 403
    assert post_rate(client).status_code == 403


def test_the_periodic_check_follows_slurm(client, personas, on):
    set_level("owner", 3)
    client.force_login(personas.owner)
    set_level("owner", 2)
    assert sync_slurm_roles.delay().get() == {"owner": roles.OPERATORS}
    assert groups_of(personas.owner) == {roles.OPERATORS}
    assert client.get(reverse("billing:staff_usage")).status_code == 200
    assert post_rate(client).status_code == 403
    set_level("owner", 1)
    assert roles.sync_all() == {"owner": ""}
    assert client.get(reverse("billing:staff_usage")).status_code == 403
    assert roles.sync_all() == {}  # nothing left to change


def test_the_periodic_check_gives_roles_to_users_who_signed_in_before(personas, on):
    set_level("member", 2)
    assert roles.sync_all() == {"member": roles.OPERATORS}
    assert groups_of(personas.member) == {roles.OPERATORS}
    assert groups_of(personas.outsider) == set()


def test_with_the_setting_off_slurm_levels_give_nothing_and_old_roles_go(client, personas, settings):
    settings.BILLING_ROLES_FROM_SLURM = True
    set_level("owner", 3)
    set_level("member", 2)
    roles.sync_all()
    settings.BILLING_ROLES_FROM_SLURM = False
    client.force_login(personas.owner)
    assert groups_of(personas.owner) == set()
    assert groups_of(personas.member) == {roles.OPERATORS}
    assert roles.sync_all() == {"member": ""}
    assert client.get(reverse("billing:staff_usage")).status_code == 403


def test_the_database_down_changes_nothing(client, personas, on, monkeypatch):
    set_level("owner", 2)
    client.force_login(personas.owner)

    def down(*args, **kwargs):
        from userportal.errors import SlurmDatabaseUnavailable

        raise SlurmDatabaseUnavailable("down")

    monkeypatch.setattr(roles, "elevated_levels", down)
    client.force_login(personas.owner)
    assert groups_of(personas.owner) == {roles.OPERATORS}
    with pytest.raises(Exception, match="down"):
        roles.sync_all()
    assert groups_of(personas.owner) == {roles.OPERATORS}


def fake_sacctmgr(monkeypatch, output: str, calls: list):
    def run(argv, *, timeout, check):
        calls.append(argv)
        return CommandResult(tuple(argv), 0, output, "")

    monkeypatch.setattr(sacctmgr, "run_command", run)
    sacctmgr.get_client.cache_clear()


def test_the_sacctmgr_source(client, personas, on, monkeypatch):
    on.BILLING_ROLES_SOURCE = "sacctmgr"
    calls: list = []
    fake_sacctmgr(monkeypatch, "owner|Administrator\n", calls)
    client.force_login(personas.owner)
    assert calls[-1][-4:] == ["show", "user", "owner", "format=User,AdminLevel"]
    assert groups_of(personas.owner) == {roles.ADMINISTRATORS}
    fake_sacctmgr(monkeypatch, "member|Operator\nowner|None\noutsider|\nroot|Administrator\n", calls)
    assert roles.sync_all() == {"member": roles.OPERATORS, "owner": ""}
    assert calls[-1][-3:] == ["show", "user", "format=User,AdminLevel"]


def test_sacctmgr_failing_changes_nothing(client, personas, on, monkeypatch):
    set_level("owner", 2)
    client.force_login(personas.owner)  # from the database: Operator
    on.BILLING_ROLES_SOURCE = "sacctmgr"

    def broken(argv, *, timeout, check):
        raise SlurmCommandError("timed out", argv=argv, timed_out=True)

    monkeypatch.setattr(sacctmgr, "run_command", broken)
    sacctmgr.get_client.cache_clear()
    client.force_login(personas.owner)
    assert groups_of(personas.owner) == {roles.OPERATORS}


def test_the_command_checks_now_and_lists(personas, on):
    from io import StringIO

    from django.core.management import call_command

    set_level("member", 3)
    out = StringIO()
    call_command("billing_slurm_roles", stdout=out)
    assert "member\tslurm-administrators" in out.getvalue()
    assert "1 change(s); on" in out.getvalue()
    out = StringIO()
    call_command("billing_slurm_roles", "--list", stdout=out)
    assert out.getvalue() == "slurm-operators: -\nslurm-administrators: member\n"


def test_the_check_with_the_setting_off_creates_no_group(personas, settings):
    settings.BILLING_ROLES_FROM_SLURM = False
    set_level("owner", 3)
    assert sync_slurm_roles.delay().get() == {}
    assert not Group.objects.filter(name__in=list(roles.GROUPS)).exists()


def test_a_non_staff_operator_left_in_a_staff_power_group_changes_nothing(client, personas, on, receipt):
    from userportal.powers import grant

    grant(personas.owner, ["billing-rates", "billing-payments"])  # left over from staff days
    set_level("owner", 2)
    client.force_login(personas.owner)  # not staff, Slurm Operator
    assert personas.owner.has_perm("billing.add_rate") and personas.owner.has_perm(roles.READ)
    assert post_rate(client).status_code == 403
    assert client.post(reverse("billing:mark_paid", kwargs={"receipt_id": receipt.pk})).status_code == 403
    assert Receipt.objects.get(pk=receipt.pk).status == Receipt.Status.PENDING
    assert b'action="' + reverse("billing:formula").encode() not in client.get(reverse("billing:staff_rates")).content
    # staff without the power may not either; staff with it may
    assert not roles.may(personas.member, "billing.add_rate")
    personas.owner.is_staff = True
    personas.owner.save()
    assert roles.may(type(personas.owner).objects.get(pk=personas.owner.pk), "billing.add_rate")


def test_sacctmgr_source_a_name_slurm_cannot_hold_has_no_level(client, on, monkeypatch, django_user_model):
    on.BILLING_ROLES_SOURCE = "sacctmgr"
    calls: list = []
    fake_sacctmgr(monkeypatch, "", calls)
    user = django_user_model.objects.create_user(username="ops@example.org", password="x")
    client.force_login(user)  # signs in: no ValueError from the name check, and no sacctmgr call
    assert groups_of(user) == set()
    assert calls == []
    fake_sacctmgr(monkeypatch, "owner|Administrator\n", calls)
    assert "ops@example.org" not in roles.sync_all()
