"""The priority admins (manage.py priorities_admins, as the seed's manage_admin.py): they accept, refuse and
manage requests; other staff see the panel read-only (no buttons, a POST is a 403); mail goes to them."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from factories import StaffFactory
from priorities_helpers import request_data

from priorities import services
from priorities.models import PriorityAdmin, PriorityRequest

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

BUTTONS = (b'value="accept"', b'value="refuse"', b'value="message"', b'value="add_users"', b'value="delete"')


def admins_cmd(*args: str) -> str:
    out = StringIO()
    call_command("priorities_admins", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def boss(personas):
    return StaffFactory(username="boss", email="boss@portal.example.org")


@pytest.fixture
def plain(personas):
    return StaffFactory(username="plainstaff", email="plain@example.org")


def test_an_admin_decides_plain_staff_read(client, personas, make_priority, boss, plain):
    priority = make_priority()
    url = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    admins_cmd("add", "boss")
    client.force_login(plain)
    page = client.get(url)
    assert page.status_code == 200
    assert not any(button in page.content for button in BUTTONS)
    assert b"Read-only" in page.content
    for action in (
        {"action": "accept", "qos_name": "prio_x"},
        {"action": "refuse", "reason": "no"},
        {"action": "delete"},
    ):
        assert client.post(url, action).status_code == 403
    assert client.get(reverse("priorities:staff")).status_code == 200  # the panel itself: read
    client.force_login(boss)
    assert all(button in client.get(url).content for button in BUTTONS)
    assert client.post(url, {"action": "accept", "qos_name": "prio_x"}).status_code == 302
    assert PriorityRequest.objects.get(pk=priority.pk).decided_by == "boss"


def test_removing_an_admin_takes_the_decision_away(client, personas, make_priority, boss):
    priority = make_priority()
    url = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    admins_cmd("add", "boss", "boss@example.org")
    assert "removed boss" in admins_cmd("remove", "boss")
    client.force_login(boss)
    assert client.post(url, {"action": "refuse", "reason": "no"}).status_code == 403
    assert not PriorityAdmin.objects.exists()
    with pytest.raises(CommandError, match="not an admin"):
        admins_cmd("remove", "boss")


def test_the_list_and_the_priority_decisions_power_are_one(personas, boss, plain):
    call_command("staff_powers", "grant", "priority-decisions", "--user", "plainstaff", verbosity=0)
    admins_cmd("add", "boss", "boss@example.org")
    listing = admins_cmd("list")
    assert "boss\tboss@example.org\n" in listing
    assert "plainstaff\tplain@example.org\tdecides (staff_powers), no mail" in listing


def test_add_needs_a_portal_account_and_warns_about_staff(personas):
    with pytest.raises(CommandError, match="no portal account"):
        admins_cmd("add", "nobody-yet", "n@example.org")
    with pytest.raises(CommandError, match="not an email"):
        admins_cmd("add", "owner", "not-mail")
    assert "owner is not staff" in admins_cmd("add", "owner")
    assert "owner\towner@example.org\tnot staff\n" in admins_cmd("list")


def test_mail_about_new_requests_goes_to_the_admins(personas, boss, plain, django_capture_on_commit_callbacks):
    admins_cmd("add", "boss")  # the account's address
    admins_cmd("add", "plainstaff", "prio@example.org")  # the address given
    with django_capture_on_commit_callbacks(execute=True):
        services.create_request(request_data(), user=personas.owner, cluster=personas.slurm.cluster)
    assert mail.outbox[0].to == ["boss@portal.example.org", "prio@example.org"]


def test_without_admins_mail_goes_to_every_staff_user(personas, plain, django_capture_on_commit_callbacks):
    assert "nobody listed for mail" in admins_cmd("list")
    with django_capture_on_commit_callbacks(execute=True):
        services.create_request(request_data(), user=personas.owner, cluster=personas.slurm.cluster)
    assert "plain@example.org" in mail.outbox[0].to
