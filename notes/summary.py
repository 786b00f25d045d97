"""notes on other apps' pages: the user summary's section (staff only), the marks beside users,
accounts and jobs (userportal.annotations) and the staff search's notes and tickets (userportal.search),
all registered at start-up (NotesConfig.ready())."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from notes.services import live_notes, notes_about
from slurm.visibility import accounts_of
from userportal import powers
from userportal.annotations import Annotation, Kind
from userportal.search import SearchHit, SearchProvider, rank
from userportal.summary import SummaryContext, SummarySection

SHOWN = 20


def build(context: SummaryContext) -> dict[str, Any]:
    """The notes on the user, on their jobs and on their accounts, newest first (two queries)."""
    about_user = notes_about("user", [context.username], context.cluster).get(context.username, [])
    accounts = accounts_of(context.username, context.cluster)
    about_accounts = [note for notes in notes_about("account", accounts, context.cluster).values() for note in notes]
    notes = sorted(
        {note.pk: note for note in [*about_user, *about_accounts]}.values(), key=lambda n: n.created, reverse=True
    )
    return {
        "notes": notes[:SHOWN],
        "more": len(notes) > SHOWN,
        "may_write": powers.may(context.viewer, "notes.add_note"),
        "new_url": reverse("notes:new")
        + "?"
        + urlencode({"username": context.username, "next": _summary_url(context)}),
    }


def _summary_url(context: SummaryContext) -> str:
    return reverse("usersummary:user", kwargs={"username": context.username})


def link(context: SummaryContext) -> str:
    return reverse("notes:index") + "?" + urlencode({"username": context.username})


SECTIONS = (
    SummarySection(
        key="notes",
        module="notes",
        title=_("Staff notes"),
        source=_("the portal database"),
        template="notes/summary.html",
        build=build,
        link=link,
        order=5,
        staff_only=True,
    ),
)

FILTER = {"user": "username", "account": "account", "job": "job"}


def annotate(kind: Kind, keys: list[str], cluster: str) -> dict[str, list[Annotation]]:
    """A "N staff notes" mark for each key that has live notes, linking to them (one query)."""
    marks = {}
    for key, notes in notes_about(kind, keys, cluster).items():
        label = ngettext("%(count)d staff note", "%(count)d staff notes", len(notes)) % {"count": len(notes)}
        url = reverse("notes:index") + "?" + urlencode({FILTER[kind]: key})
        marks[key] = [Annotation(label, url, "; ".join(note.title for note in notes[:5]))]
    return marks


def search(query: str, cluster: str, limit: int) -> list[SearchHit]:
    """The staff search's notes (title, text, ticket) and the tickets they cite: two queries."""
    notes = list(
        live_notes()
        .filter(Q(title__icontains=query) | Q(text__icontains=query) | Q(ticket__icontains=query))
        .order_by("-created", "-id")[:limit]
    )
    hits = [
        SearchHit(
            "note",
            note.title,
            reverse("notes:detail", kwargs={"note_id": note.pk}),
            " · ".join(f"{kind} {value}" for kind, value in note.subjects),
            max(rank(note.title, query), rank(note.ticket, query), 5),
        )
        for note in notes
    ]
    tickets = (
        live_notes().filter(ticket__icontains=query).values("ticket").annotate(n=Count("id")).order_by("ticket")[:limit]
    )
    hits += [
        SearchHit(
            "ticket",
            row["ticket"],
            reverse("notes:index") + "?" + urlencode({"ticket": row["ticket"]}),
            ngettext("%(count)d staff note", "%(count)d staff notes", row["n"]) % {"count": row["n"]},
            rank(row["ticket"], query),
        )
        for row in tickets
    ]
    return hits


SEARCH = SearchProvider("notes", _("the staff notes"), search)
