"""The Bugzilla workflow (priorities.bugzilla) against a local server answering as Bugzilla's REST API
does (tests/priorities/bugzilla_server.py): the form checks the ticket exists, is open and is approved;
staff see its title, status and who approved it; Bugzilla down files the request unchecked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bugzilla_server import FakeBugzilla, bug, flag
from django.urls import reverse
from django.utils import timezone

from priorities import bugzilla
from priorities.mail import ticket_url
from priorities.models import PriorityRequest

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def fake(settings):
    with FakeBugzilla(api_key="secret-key") as server:
        settings.PRIORITIES_BUGZILLA_URL = server.url
        settings.PRIORITIES_BUGZILLA_API_KEY = "secret-key"
        settings.PRIORITIES_BUGZILLA_APPROVAL = "flag:pi-approval"
        settings.PRIORITIES_BUGZILLA_TIMEOUT = 1.0
        settings.PRIORITIES_TICKET_URL = ""
        server.bugs[777] = bug(777, flags=[flag("pi-approval", "+", "prof@example.org")])
        yield server


def form(**overrides):
    start = timezone.localtime() + timedelta(hours=3)
    values = {
        "account": "def-owner", "gpu_type": "a100", "gpu_count": "1", "start": start.strftime("%Y-%m-%dT%H:%M"),
        "duration_days": "5", "justification": "thesis experiments", "ticket": "777", "users": "",
    }  # fmt: skip
    values.update(overrides)
    return values


def file(client, personas, **overrides):
    client.force_login(personas.owner)
    return client.post(reverse("priorities:new"), form(**overrides))


def ticket_error(response) -> str:
    assert response.status_code == 400
    assert not PriorityRequest.objects.exists()
    return " ".join(response.context["form"].errors["ticket"])


def test_an_open_approved_ticket_is_recorded_with_the_request(client, personas, fake):
    assert file(client, personas).status_code == 302
    priority = PriorityRequest.objects.get()
    assert priority.ticket_summary == "GPU priority for the thesis (777)"
    assert (priority.ticket_status, priority.ticket_approved_by) == ("CONFIRMED", "prof@example.org")
    assert priority.ticket_checked_at is not None
    path, headers = fake.requests[-1]
    assert path.startswith("/rest/bug/777?include_fields=")
    assert headers["x-bugzilla-api-key"] == "secret-key"
    assert headers["accept"] == "application/json"


def test_a_link_to_the_ticket_on_this_bugzilla_is_a_ticket(client, personas, fake):
    assert file(client, personas, ticket=f"{fake.url}/show_bug.cgi?id=777").status_code == 302
    assert PriorityRequest.objects.get().ticket_approved_by == "prof@example.org"


def test_a_link_elsewhere_is_refused(client, personas, fake):
    assert "Give the number of a ticket in" in ticket_error(
        file(client, personas, ticket="https://elsewhere.example.org/show_bug.cgi?id=777")
    )


def test_a_missing_ticket_is_refused(client, personas, fake):
    assert "Bugzilla has no ticket 778" in ticket_error(file(client, personas, ticket="#778"))


def test_a_private_ticket_is_refused(client, personas, fake):
    fake.private.add(777)
    assert "private in Bugzilla" in ticket_error(file(client, personas))


def test_a_closed_ticket_is_refused(client, personas, fake):
    fake.bugs[777].update(status="RESOLVED", resolution="FIXED", is_open=False)
    assert "Ticket 777 is closed (RESOLVED FIXED)" in ticket_error(file(client, personas))


@pytest.mark.parametrize("flags", [[], [flag("pi-approval", "?", "alice@example.org")], [flag("other", "+", "x")]])
def test_a_ticket_without_the_approval_is_refused(client, personas, fake, flags):
    fake.bugs[777]["flags"] = flags
    assert "no approval recorded yet (flag:pi-approval)" in ticket_error(file(client, personas))


def test_the_approval_may_be_a_field(client, personas, fake, settings):
    settings.PRIORITIES_BUGZILLA_APPROVAL = "field:cf_pi_approver"
    fake.bugs[777]["cf_pi_approver"] = "prof.b@example.org"
    assert file(client, personas).status_code == 302
    assert PriorityRequest.objects.get().ticket_approved_by == "prof.b@example.org"
    assert "cf_pi_approver" in fake.requests[-1][0]


def test_without_an_approval_setting_an_open_ticket_is_enough(client, personas, fake, settings):
    settings.PRIORITIES_BUGZILLA_APPROVAL = ""
    fake.bugs[777]["flags"] = []
    assert file(client, personas).status_code == 302
    assert PriorityRequest.objects.get().ticket_approved_by == ""


@pytest.mark.parametrize("trouble", ["timeout", "html", "bad key"])
def test_bugzilla_not_answering_files_the_request_unchecked(client, personas, fake, settings, trouble):
    if trouble == "timeout":
        fake.delay = 1.5
    elif trouble == "html":
        fake.broken = True
    else:
        settings.PRIORITIES_BUGZILLA_API_KEY = "wrong"
    assert file(client, personas).status_code == 302
    priority = PriorityRequest.objects.get()
    assert priority.ticket_checked_at is None
    staff_page = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    client.force_login(personas.staff)
    page = client.get(staff_page).content.decode()
    assert "Not checked in Bugzilla yet." in page
    assert "Bugzilla is not answering" in page
    fake.delay, fake.broken = 0, False
    settings.PRIORITIES_BUGZILLA_API_KEY = "secret-key"
    page = client.get(staff_page).content.decode()  # asked again: now it answers
    assert "GPU priority for the thesis (777)" in page
    assert "Approved by prof@example.org" in page


def test_staff_see_the_ticket_as_bugzilla_has_it_now(client, personas, fake):
    assert file(client, personas).status_code == 302
    priority = PriorityRequest.objects.get()
    url = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    client.force_login(personas.staff)
    page = client.get(url).content.decode()
    assert '<span class="badge text-bg-secondary ticket-status">CONFIRMED</span>' in page
    assert f'href="{fake.url}/show_bug.cgi?id=777"' in page
    listing = client.get(reverse("priorities:staff")).content.decode()
    assert "GPU priority for the thesis (777)" in listing  # the panel's list too
    asked = len(fake.requests)
    fake.bugs[777].update(status="RESOLVED", resolution="FIXED", is_open=False)
    client.get(url)
    assert len(fake.requests) == asked  # answered minutes ago: not asked again
    PriorityRequest.objects.filter(pk=priority.pk).update(ticket_checked_at=timezone.now() - timedelta(minutes=6))
    assert "RESOLVED FIXED" in client.get(url).content.decode()
    fake.bugs.pop(777)
    PriorityRequest.objects.filter(pk=priority.pk).update(ticket_checked_at=timezone.now() - timedelta(minutes=6))
    page = client.get(url).content.decode()
    assert "Bugzilla has no ticket 777" in page
    assert "RESOLVED FIXED" in page  # as last checked


def test_without_bugzilla_the_ticket_stays_a_reference(client, personas, settings):
    settings.PRIORITIES_BUGZILLA_URL = ""
    settings.PRIORITIES_TICKET_URL = ""
    assert file(client, personas, ticket="#999999").status_code == 302
    priority = PriorityRequest.objects.get()
    assert (priority.ticket_checked_at, priority.ticket_summary) == (None, "")
    assert ticket_url("#999999") == ""
    assert bugzilla.refresh(priority) == ""


def test_ticket_numbers_and_links(fake):
    assert [bugzilla.bug_id(t) for t in ("12", "#12", " 12 ", f"{fake.url}/show_bug.cgi?id=12")] == [12, 12, 12, 12]
    assert bugzilla.bug_id(f"{fake.url}/show_bug.cgi?id=1&id=2") is None
    assert bugzilla.bug_id(f"{fake.url}/other.cgi?id=12") is None
    assert bugzilla.bug_id("twelve") is None
    assert ticket_url("#12") == f"{fake.url}/show_bug.cgi?id=12"


def test_a_ticket_backing_another_open_request_is_refused(client, personas, fake):
    assert file(client, personas).status_code == 302  # 777 backs this one
    first = PriorityRequest.objects.get()
    asked = len(fake.requests)
    for written in ("777", "#777", f"{fake.url}/show_bug.cgi?id=777", "0777"):
        client.force_login(personas.member)
        response = client.post(reverse("priorities:new"), form(ticket=written))
        assert response.status_code == 400, written
        assert "Ticket 777 already backs another open priority request" in " ".join(
            response.context["form"].errors["ticket"]
        )
    assert len(fake.requests) == asked  # refused before asking Bugzilla
    assert PriorityRequest.objects.count() == 1
    for status in ("accepted", "active"):
        PriorityRequest.objects.filter(pk=first.pk).update(status=status)
        assert client.post(reverse("priorities:new"), form()).status_code == 400, status
    PriorityRequest.objects.filter(pk=first.pk).update(status="refused")  # no longer open: free again
    client.force_login(personas.member)
    assert client.post(reverse("priorities:new"), form()).status_code == 302
    assert PriorityRequest.objects.count() == 2
