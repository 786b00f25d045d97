"""The Bugzilla workflow: a GPU priority request names a ticket where the PI approved it.

With PRIORITIES_BUGZILLA_URL, the request form asks Bugzilla's REST API (``GET /rest/bug/<id>``,
the API key in the ``X-BUGZILLA-API-KEY`` header) whether the ticket exists and is open, and who
approved it (PRIORITIES_BUGZILLA_APPROVAL: ``flag:<name>``, the setter of that flag at "+", or
``field:<name>``, a field's value, e.g. a custom ``cf_pi_approver``; when set, the approval is
required). The answer is stored with the request and refreshed on the staff page. Bugzilla's
documented errors: code 101 (no such bug) and 102 (not authorized) refuse the ticket; any other
error, a timeout or an unreadable answer leaves it unchecked (the request is filed; staff see
that). A ticket backs one request at a time: one already named by another open (pending, accepted
or active) request is refused, whatever form it was given in (``12345``, ``#12345``, a link).
Without the setting the ticket stays a reference checked by its form alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from priorities.models import OPEN_STATUSES, PriorityRequest
from userportal.errors import DataSourceError

BUG_NUMBER = re.compile(r"#?(\d{1,10})")
REFRESH = timedelta(minutes=5)  # the staff page asks again when the stored answer is older


class BugzillaUnavailable(DataSourceError):
    source = "bugzilla"
    status_code = 502
    user_message = gettext_lazy("Bugzilla is not answering: the ticket could not be checked.")


class TicketRefused(Exception):
    """The ticket cannot back a request: missing, unreadable, closed or not approved (the message says which)."""


@dataclass(frozen=True)
class Ticket:
    id: int
    summary: str
    status: str  # "CONFIRMED", or "RESOLVED FIXED" with its resolution
    is_open: bool
    approved_by: str  # "" when no approval was found (or none is configured)


def configured() -> bool:
    return bool(settings.PRIORITIES_BUGZILLA_URL)


def _base() -> str:
    return str(settings.PRIORITIES_BUGZILLA_URL).rstrip("/")


def bug_id(ticket: str) -> int | None:
    """The bug number of ``12345``, ``#12345`` or a link to it on the configured Bugzilla; else None."""
    text = (ticket or "").strip()
    number = BUG_NUMBER.fullmatch(text)
    if number:
        return int(number.group(1))
    if not configured() or not text.startswith(("http://", "https://")):
        return None
    link, base = urlsplit(text), urlsplit(_base())
    if (link.scheme, link.netloc) != (base.scheme, base.netloc) or not link.path.endswith("/show_bug.cgi"):
        return None
    ids = parse_qs(link.query).get("id", [])
    return int(ids[0]) if len(ids) == 1 and ids[0].isdigit() and len(ids[0]) <= 10 else None


def ticket_link(ticket: str) -> str:
    number = bug_id(ticket)
    return f"{_base()}/show_bug.cgi?id={number}" if configured() and number is not None else ""


def _approval(bug: dict[str, Any]) -> str:
    kind, _sep, name = str(settings.PRIORITIES_BUGZILLA_APPROVAL).partition(":")
    if kind == "flag":
        granted = [f for f in bug.get("flags") or [] if isinstance(f, dict) and f.get("name") == name]
        granted = [f for f in granted if f.get("status") == "+"]
        granted.sort(key=lambda f: str(f.get("modification_date") or ""))
        return str(granted[-1].get("setter") or "") if granted else ""
    if kind == "field":
        value = bug.get(name)
        if isinstance(value, dict):  # a user field's *_detail shape
            value = value.get("name") or value.get("real_name")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if v)
        return "" if value in (None, "", "---") else str(value)
    return ""


def fetch(number: int) -> Ticket:
    """Bug `number` from Bugzilla; TicketRefused for errors 101 and 102, BugzillaUnavailable otherwise."""
    fields = ["id", "summary", "status", "resolution", "is_open", "flags"]
    kind, _sep, name = str(settings.PRIORITIES_BUGZILLA_APPROVAL).partition(":")
    if kind == "field" and name:
        fields.append(name)
    headers = {"Accept": "application/json"}
    if settings.PRIORITIES_BUGZILLA_API_KEY:
        headers["X-BUGZILLA-API-KEY"] = settings.PRIORITIES_BUGZILLA_API_KEY
    try:
        response = requests.get(
            f"{_base()}/rest/bug/{number}",
            params={"include_fields": ",".join(fields)},
            headers=headers,
            timeout=settings.PRIORITIES_BUGZILLA_TIMEOUT,
            allow_redirects=False,
        )
        body = response.json()
    except requests.RequestException as exc:
        raise BugzillaUnavailable(f"GET /rest/bug/{number}: {exc}") from exc
    except ValueError as exc:
        raise BugzillaUnavailable(f"GET /rest/bug/{number}: HTTP {response.status_code}, not JSON") from exc
    if not isinstance(body, dict):
        raise BugzillaUnavailable(f"GET /rest/bug/{number}: not a JSON object")
    if body.get("error"):
        code = body.get("code")
        if code == 101:
            raise TicketRefused(_("Bugzilla has no ticket %(id)s.") % {"id": number})
        if code == 102:
            raise TicketRefused(
                _("Ticket %(id)s is private in Bugzilla: the portal may not read it. Ask the staff.") % {"id": number}
            )
        raise BugzillaUnavailable(f"GET /rest/bug/{number}: error {code}: {str(body.get('message'))[:200]}")
    bugs = body.get("bugs")
    if response.status_code != 200 or not isinstance(bugs, list) or not bugs or not isinstance(bugs[0], dict):
        raise BugzillaUnavailable(f"GET /rest/bug/{number}: HTTP {response.status_code} without a bug")
    bug = bugs[0]
    status, resolution = str(bug.get("status") or ""), str(bug.get("resolution") or "")
    is_open = bug.get("is_open")
    return Ticket(
        id=int(bug.get("id") or number),
        summary=str(bug.get("summary") or "")[:255],
        status=f"{status} {resolution}".strip()[:64],
        is_open=bool(is_open) if isinstance(is_open, bool) else not resolution,
        approved_by=_approval(bug)[:150],
    )


def backing(number: int, exclude: int | None = None) -> PriorityRequest | None:
    """An open request (pending, accepted, active) whose ticket is bug `number`, however written; else None."""
    found = PriorityRequest.objects.filter(status__in=OPEN_STATUSES, ticket__contains=str(number))
    if exclude is not None:
        found = found.exclude(pk=exclude)
    return next((other for other in found.order_by("pk") if bug_id(other.ticket) == number), None)


def check(ticket: str) -> Ticket | None:
    """The ticket of a new request: TicketRefused when it cannot back one; None when Bugzilla does not answer."""
    number = bug_id(ticket)
    if number is None:
        raise TicketRefused(_("Give the number of a ticket in %(url)s, or its link there.") % {"url": _base()})
    if backing(number) is not None:
        raise TicketRefused(
            _("Ticket %(id)s already backs another open priority request: one ticket per request.") % {"id": number}
        )
    try:
        found = fetch(number)
    except BugzillaUnavailable:
        return None
    if not found.is_open:
        raise TicketRefused(_("Ticket %(id)s is closed (%(status)s).") % {"id": number, "status": found.status})
    if settings.PRIORITIES_BUGZILLA_APPROVAL and not found.approved_by:
        raise TicketRefused(
            _("Ticket %(id)s has no approval recorded yet (%(where)s).")
            % {"id": number, "where": settings.PRIORITIES_BUGZILLA_APPROVAL}
        )
    return found


def record(priority: PriorityRequest, found: Ticket) -> None:
    """Store what Bugzilla said on the request (no history row: it is a cache of Bugzilla)."""
    values = {
        "ticket_summary": found.summary,
        "ticket_status": found.status,
        "ticket_approved_by": found.approved_by,
        "ticket_checked_at": timezone.now(),
    }
    PriorityRequest.objects.filter(pk=priority.pk).update(**values)
    for name, value in values.items():
        setattr(priority, name, value)


def refresh(priority: PriorityRequest) -> str:
    """Ask Bugzilla again when the stored answer is old (staff page); a notice for staff, or ""."""
    number = bug_id(priority.ticket)
    if not configured() or number is None:
        return ""
    if priority.ticket_checked_at and timezone.now() - priority.ticket_checked_at < REFRESH:
        return ""
    try:
        record(priority, fetch(number))
    except TicketRefused as exc:
        return str(exc)
    except BugzillaUnavailable:
        return _("Bugzilla is not answering: the ticket's title and status are as last checked.")
    return ""
