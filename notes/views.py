"""notes pages (staff only). Thin: parse with the form, call a service, render or redirect.

Plain staff read the notes; writing, changing and deleting them is a power (userportal.powers:
note-writers, with notes.add_note and notes.change_note).

After a save, the page goes back to ``next`` only when it is a local address of this site
(url_has_allowed_host_and_scheme), else to the note: never to the raw Referer (TT's open redirect).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from notes import services
from notes.forms import NoteForm
from notes.models import Note
from userportal import powers
from userportal.clusters import current_cluster

PAGE_SIZE = 50


def safe_next(request: HttpRequest, fallback: str) -> str:
    """``next`` (POST, else GET) when it is a local address of this site, else ``fallback``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def index(request: HttpRequest) -> HttpResponse:
    include_deleted = request.GET.get("deleted") == "1"
    notes = services.search(request.GET.dict(), include_deleted=include_deleted)
    page = Paginator(notes.select_related("author"), PAGE_SIZE).get_page(request.GET.get("page", 1))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "notes/index.html",
        {
            "page": page,
            "filters": request.GET,
            "include_deleted": include_deleted,
            "query": query.urlencode(),
            "may_write": powers.may(request.user, "notes.add_note"),
        },
    )


def new(request: HttpRequest) -> HttpResponse:
    powers.require(request.user, "notes.add_note")
    form = NoteForm(request.POST or None, cluster=current_cluster(request), initial=_initial(request))
    if request.method == "POST" and form.is_valid():
        assert form.subject is not None
        note = services.create_note(
            form.subject,
            title=form.cleaned_data["title"],
            text=form.cleaned_data["text"],
            ticket=form.cleaned_data["ticket"],
            author=request.user,
            request=request,
        )
        messages.success(request, _("Note saved."))
        return HttpResponseRedirect(safe_next(request, reverse("notes:detail", kwargs={"note_id": note.pk})))
    return render(request, "notes/form.html", {"form": form, "note": None, "next": safe_next(request, "")})


def _initial(request: HttpRequest) -> dict[str, Any]:
    return {name: request.GET[name] for name in ("username", "account", "job", "ticket") if name in request.GET}


def detail(request: HttpRequest, note_id: int) -> HttpResponse:
    note = get_object_or_404(Note, pk=note_id)
    context = {
        "note": note,
        "history": services.history_of(note),
        "may_change": powers.may(request.user, "notes.change_note"),
    }
    return render(request, "notes/detail.html", context)


def edit(request: HttpRequest, note_id: int) -> HttpResponse:
    powers.require(request.user, "notes.change_note")
    note = get_object_or_404(Note, pk=note_id, deleted=False)
    initial = {
        "username": note.username,
        "account": note.account,
        "job": note.job_ref,
        "title": note.title,
        "text": note.text,
        "ticket": note.ticket,
    }
    form = NoteForm(request.POST or None, cluster=note.cluster, initial=initial)
    if request.method == "POST" and form.is_valid():
        assert form.subject is not None
        services.update_note(
            note,
            form.subject,
            title=form.cleaned_data["title"],
            text=form.cleaned_data["text"],
            ticket=form.cleaned_data["ticket"],
            actor=request.user,
            request=request,
        )
        messages.success(request, _("Note saved."))
        return HttpResponseRedirect(safe_next(request, reverse("notes:detail", kwargs={"note_id": note.pk})))
    return render(request, "notes/form.html", {"form": form, "note": note, "next": safe_next(request, "")})


@require_POST
def delete(request: HttpRequest, note_id: int) -> HttpResponse:
    powers.require(request.user, "notes.change_note")
    note = get_object_or_404(Note, pk=note_id)
    restore = request.POST.get("restore") == "1"
    services.set_deleted(note, not restore, actor=request.user, request=request)
    messages.success(request, _("Note restored.") if restore else _("Note deleted."))
    return HttpResponseRedirect(safe_next(request, reverse("notes:detail", kwargs={"note_id": note.pk})))
