"""Staff notes on a user, a Slurm account or a job: soft-deleted, with their history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class Note(models.Model):
    """A note names at least one subject: a user, an account or a job (each checked when saved, notes.services)."""

    cluster = models.CharField(_("cluster"), max_length=64)
    username = models.CharField(_("user"), max_length=150, blank=True, db_index=True)
    account = models.CharField(_("Slurm account"), max_length=255, blank=True, db_index=True)
    job_ref = models.CharField(_("job"), max_length=32, blank=True, help_text=_("1234, 1234_7 or 1240+1"))
    # The record job_ref named when the note was saved: its id_job (an array task has its own) and its user.
    job_id = models.PositiveBigIntegerField(_("job id"), null=True, blank=True, db_index=True)
    job_user = models.CharField(_("job's user"), max_length=150, blank=True)
    title = models.CharField(_("title"), max_length=200)
    text = models.TextField(_("text"))
    ticket = models.CharField(_("ticket"), max_length=200, blank=True, db_index=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="notes_written",
        verbose_name=_("author"),
    )
    author_name = models.CharField(_("author"), max_length=150)  # kept if the account is removed
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated = models.DateTimeField(_("updated"), auto_now=True)
    deleted = models.BooleanField(_("deleted"), default=False, db_index=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)
    deleted_by = models.CharField(_("deleted by"), max_length=150, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("staff note")
        verbose_name_plural = _("staff notes")
        constraints = [
            models.CheckConstraint(condition=~Q(username="", account="", job_ref=""), name="note_names_a_subject"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def subjects(self) -> list[tuple[str, str]]:
        """(kind, value) of each subject: ("user", "alice"), ("account", "physics"), ("job", "1234_7")."""
        found = [("user", self.username), ("account", self.account), ("job", self.job_ref)]
        return [(kind, value) for kind, value in found if value]
