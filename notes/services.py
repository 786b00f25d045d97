"""Staff notes: what a note may name (checked against the Slurm database and the portal's users), writing
one (audited, with its history), soft-deleting it, and the notes about a set of users, accounts or jobs.

Every note names at least one subject. A user must be a portal user or a Slurm user; an account a live
Slurm account; a job one the accounting database has (``1234``, ``1234_7``, ``1240+1``), and when the
note also names a user or an account, the job must be theirs. Each check is one indexed query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from notes.models import Note
from slurm.ids import parse_job_ref
from slurm.lookup import owner_of, records_of
from slurm.models import Account, SlurmUser, cluster_models
from userportal.audit import audit
from userportal.errors import SlurmDatabaseUnavailable

MAX_TEXT = 20_000


@dataclass(frozen=True)
class Subject:
    """What a note names, once checked; ``job_id`` and ``job_user`` are the record ``job_ref`` found."""

    cluster: str
    username: str = ""
    account: str = ""
    job_ref: str = ""
    job_id: int | None = None
    job_user: str = ""


def _slurm(func: Any) -> Any:
    try:
        return func()
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc


def user_known(username: str, cluster: str) -> bool:
    if get_user_model().objects.filter(username=username).exists():
        return True
    return bool(
        _slurm(
            lambda: (
                SlurmUser.objects.filter(name=username, deleted=0).exists()
                or cluster_models(cluster).assoc.objects.filter(user=username, deleted=0).exists()
            )
        )
    )


def check_subject(*, cluster: str, username: str = "", account: str = "", job: str = "") -> Subject:
    """The checked subject, or ValidationError with a message per field (``username``, ``account``, ``job``)."""
    username, account, job = username.strip(), account.strip(), job.strip()
    errors: dict[str, str] = {}
    if not (username or account or job):
        raise ValidationError(_("Name a user, an account or a job (at least one)."))
    if username and not user_known(username, cluster):
        errors["username"] = _("No portal or Slurm user is called %(name)s.") % {"name": username}
    if account and not _slurm(lambda: Account.objects.filter(name=account, deleted=0).exists()):
        errors["account"] = _("No Slurm account is called %(name)s.") % {"name": account}
    job_id, job_user, job_ref = None, "", ""
    if job:
        ref = parse_job_ref(job)
        record = _slurm(lambda: records_of(ref, cluster).only("id_job", "id_assoc", "account").first()) if ref else None
        if ref is None:
            errors["job"] = _("A job is written 1234, 1234_7 (an array task) or 1240+1 (a heterogeneous component).")
        elif record is None:
            errors["job"] = _("The accounting database of %(cluster)s has no job %(job)s.") % {
                "cluster": cluster,
                "job": ref,
            }
        else:
            job_ref, job_id, job_user = str(ref), record.id_job, _slurm(lambda: owner_of(record, cluster))
            if username and "username" not in errors and job_user != username:
                errors["job"] = _("Job %(job)s is %(owner)s's, not %(name)s's.") % {
                    "job": ref,
                    "owner": job_user or "?",
                    "name": username,
                }
            elif account and "account" not in errors and record.account != account:
                errors["job"] = _("Job %(job)s ran in account %(real)s, not %(account)s.") % {
                    "job": ref,
                    "real": record.account,
                    "account": account,
                }
    if errors:
        raise ValidationError(errors)
    return Subject(cluster, username, account, job_ref, job_id, job_user)


def _concrete(user: Any) -> Any:
    """The User row itself: request.user is a lazy wrapper that the database routers cannot inspect."""
    model = get_user_model()
    return user if type(user) is model else model.objects.get(pk=user.pk)


def _audit_target(note: Note) -> str:
    return f"note:{note.pk}"


@transaction.atomic
def create_note(
    subject: Subject, *, title: str, text: str, ticket: str, author: Any, request: HttpRequest | None = None
) -> Note:
    author = _concrete(author)
    note = Note(
        cluster=subject.cluster,
        username=subject.username,
        account=subject.account,
        job_ref=subject.job_ref,
        job_id=subject.job_id,
        job_user=subject.job_user,
        title=title,
        text=text,
        ticket=ticket,
        author=author,
        author_name=author.get_username(),
    )
    note._history_user = author  # type: ignore[attr-defined] # simple_history's author of this version
    note.full_clean()
    note.save()
    audit("notes.created", request=request, actor=author.get_username(), target=_audit_target(note))
    return note


@transaction.atomic
def update_note(
    note: Note, subject: Subject, *, title: str, text: str, ticket: str, actor: Any, request: HttpRequest | None = None
) -> Note:
    for name, value in (
        ("cluster", subject.cluster),
        ("username", subject.username),
        ("account", subject.account),
        ("job_ref", subject.job_ref),
        ("job_id", subject.job_id),
        ("job_user", subject.job_user),
        ("title", title),
        ("text", text),
        ("ticket", ticket),
    ):
        setattr(note, name, value)
    note._history_user = _concrete(actor)  # type: ignore[attr-defined]
    note.full_clean()
    note.save()
    audit("notes.updated", request=request, actor=actor.get_username(), target=_audit_target(note))
    return note


@transaction.atomic
def set_deleted(note: Note, deleted: bool, *, actor: Any, request: HttpRequest | None = None) -> Note:
    """Soft-delete (or restore) a note: it leaves every list but keeps its text and history."""
    note.deleted = deleted
    note.deleted_at = timezone.now() if deleted else None
    note.deleted_by = actor.get_username() if deleted else ""
    note._history_user = _concrete(actor)  # type: ignore[attr-defined]
    note.save()
    audit(
        "notes.deleted" if deleted else "notes.restored",
        request=request,
        actor=actor.get_username(),
        target=_audit_target(note),
    )
    return note


# --- reads ----------------------------------------------------------------------------------------
def live_notes() -> QuerySet[Note]:
    return Note.objects.filter(deleted=False)


def search(params: dict[str, str], *, include_deleted: bool = False) -> QuerySet[Note]:
    """The notes list and API: filters on user, account, job, ticket, cluster, and free text."""
    notes = Note.objects.all() if include_deleted else live_notes()
    for field in ("account", "ticket", "cluster"):
        value = (params.get(field) or "").strip()
        if value:
            notes = notes.filter(**{field: value})
    username = (params.get("username") or "").strip()
    if username:
        notes = notes.filter(Q(username=username) | Q(job_user=username))  # and the notes on their jobs
    job = (params.get("job") or "").strip()
    if job:
        ref = parse_job_ref(job)
        notes = notes.filter(Q(job_ref=str(ref)) | Q(job_id=ref.job_id)) if ref else notes.none()
    text = (params.get("q") or "").strip()
    if text:
        notes = notes.filter(
            Q(title__icontains=text) | Q(text__icontains=text) | Q(ticket__icontains=text)
            | Q(username__icontains=text) | Q(account__icontains=text) | Q(job_ref__icontains=text)
        )  # fmt: skip
    return notes.order_by("-created", "-id")


def _keys_of(note: Note, kind: str) -> set[str]:
    if kind == "user":
        return {note.username, note.job_user}  # a note on one of the user's jobs is about them too
    if kind == "account":
        return {note.account}
    return {str(note.job_id), note.job_ref}


MAX_ABOUT = 1000


def notes_about(kind: str, keys: Iterable[str], cluster: str) -> dict[str, list[Note]]:
    """The live notes naming each of ``keys`` (user names, account names, or job ids as text): one query."""
    wanted = {key for key in keys if key}
    notes = live_notes()
    if kind == "user":
        rows = notes.filter(Q(username__in=wanted) | Q(job_user__in=wanted))
    elif kind == "account":
        rows = notes.filter(account__in=wanted)
    elif kind == "job":
        ids = [int(key) for key in wanted if key.isdigit()]
        rows = notes.filter(cluster=cluster).filter(Q(job_id__in=ids) | Q(job_ref__in=wanted))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    found: dict[str, list[Note]] = {}
    for note in rows.order_by("-created", "-id")[:MAX_ABOUT]:
        for key in _keys_of(note, kind) & wanted:
            found.setdefault(key, []).append(note)
    return found


HISTORY_SHOWN = 50


@dataclass(frozen=True)
class Version:
    record: Any  # the historical row (simple_history): the note's fields as they were
    change: str  # created, edited, deleted, restored


def history_of(note: Note) -> list[Version]:
    """The note's versions, newest first, each with what changed: one query."""
    rows = list(note.history.select_related("history_user").order_by("history_date", "history_id"))[-HISTORY_SHOWN:]
    versions = []
    previous = None
    for row in rows:
        if row.history_type == "+" or previous is None:
            change = "created"
        elif row.deleted and not previous.deleted:
            change = "deleted"
        elif previous.deleted and not row.deleted:
            change = "restored"
        else:
            change = "edited"
        versions.append(Version(row, change))
        previous = row
    return versions[::-1]
