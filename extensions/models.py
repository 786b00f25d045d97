"""Walltime extension requests: a user asks for more time for a pending or running job, staff decide."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACCEPTED = "accepted", _("Accepted")  # decided; scontrol update is queued (or failed: see error)
    APPLIED = "applied", _("Applied")  # Slurm has the new time limit
    REFUSED = "refused", _("Refused")
    EXPIRED = "expired", _("Expired")  # the job ended first


# Requests still waiting for a decision or for Slurm: at most one per job, expired when the job ends.
OPEN_STATUSES = (Status.PENDING, Status.ACCEPTED)
# Requests whose time counts against the job's maximum total extension.
GRANTED_STATUSES = (Status.ACCEPTED, Status.APPLIED)


def open_slot(status: str) -> bool | None:
    """The value of ``open_slot`` for a status (set with every change of status)."""
    return True if status in OPEN_STATUSES else None


class ExtensionRequest(models.Model):
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="extension_requests",
        verbose_name=_("requester"),
    )
    cluster = models.CharField(_("cluster"), max_length=64)
    job_id = models.CharField(_("job"), max_length=32)  # slurmctld's one name of it: 1234 or 1234_7 (scontrol.job)
    account = models.CharField(_("Slurm account"), max_length=64)
    partition = models.CharField(_("partition"), max_length=64)
    hours = models.PositiveIntegerField(_("extension (hours)"))
    reason = models.TextField(_("reason"))
    limit_before = models.PositiveIntegerField(_("time limit when asked (minutes)"), null=True, blank=True)
    # The time limit scontrol sets, fixed when the request is accepted (so a retry sets the same).
    new_limit = models.PositiveIntegerField(_("new time limit (minutes)"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    automatic = models.BooleanField(_("accepted automatically"), default=False)
    staff_message = models.TextField(_("message from staff"), blank=True, default="")
    decided_by = models.CharField(_("decided by"), max_length=150, blank=True, default="")
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    error = models.TextField(_("Slurm error"), blank=True, default="")  # what scontrol answered when it failed
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    # True while the request is open, NULL after: with the unique constraint below, at most one open
    # request per job. (A partial unique index, filtered on status, would do; MariaDB has none.)
    open_slot = models.BooleanField(null=True, default=True, editable=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("time extension request")
        verbose_name_plural = _("time extension requests")
        indexes = [models.Index(fields=["status"]), models.Index(fields=["cluster", "job_id"])]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "job_id", "open_slot"], name="extension_one_open_request"),
            models.CheckConstraint(condition=Q(open_slot=True) | Q(open_slot__isnull=True), name="extension_open_slot"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} job {self.job_id} +{self.hours} h"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.open_slot = open_slot(self.status)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "status" in update_fields:
            kwargs["update_fields"] = {*update_fields, "open_slot"}
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES
