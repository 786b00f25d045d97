"""Temporary GPU priority requests: the portal's database is the source of truth for what Slurm should have."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACCEPTED = "accepted", _("Accepted")
    REFUSED = "refused", _("Refused")
    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")


# Requests that still hold (or will hold) GPUs: they count against the per-account limits.
OPEN_STATUSES = (Status.PENDING, Status.ACCEPTED, Status.ACTIVE)
ARCHIVED_STATUSES = (Status.REFUSED, Status.EXPIRED)
# Expired, its QOS applied, its removal not confirmed (by sacctmgr, by staff, or by slurmdbd no
# longer listing it): the staff panel keeps showing it.
REMOVAL_PENDING = Q(status=Status.EXPIRED, applied_at__isnull=False, removed_at__isnull=True)


def removal_overdue(at: datetime) -> Q:
    """Applied priorities past their end whose QOS is not confirmed removed (expired or not yet)."""
    return Q(applied_at__isnull=False, removed_at__isnull=True, end__lte=at)


class PriorityRequest(models.Model):
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="priority_requests",
        verbose_name=_("requester"),
    )
    cluster = models.CharField(_("cluster"), max_length=64)
    account = models.CharField(_("Slurm account"), max_length=64)
    gpu_type = models.CharField(_("GPU type"), max_length=64)
    gpu_count = models.PositiveIntegerField(_("GPU count"))
    start = models.DateTimeField(_("start"))
    duration_days = models.PositiveIntegerField(_("duration (days)"))
    end = models.DateTimeField(_("valid until"), editable=False)
    justification = models.TextField(_("justification"))
    ticket = models.CharField(_("ticket"), max_length=200)
    # What Bugzilla said of the ticket (priorities.bugzilla; empty without PRIORITIES_BUGZILLA_URL).
    ticket_summary = models.CharField(_("ticket title"), max_length=255, blank=True, default="")
    ticket_status = models.CharField(_("ticket status"), max_length=64, blank=True, default="")
    ticket_approved_by = models.CharField(_("approved by"), max_length=150, blank=True, default="")
    ticket_checked_at = models.DateTimeField(_("ticket checked at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    # Set by staff on acceptance; unique among requests, so two priorities never share a QOS.
    qos_name = models.CharField(_("priority name"), max_length=64, null=True, blank=True, unique=True)
    refusal_reason = models.TextField(_("refusal reason"), blank=True, default="")
    decided_by = models.CharField(_("decided by"), max_length=150, blank=True, default="")
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    # When the QOS was created in Slurm and removed again (by the portal or marked by staff).
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    start_notified_at = models.DateTimeField(null=True, blank=True)
    # What sacctmgr answered when the reconciler last failed to bring Slurm in line ("" once it succeeds).
    sync_error = models.TextField(_("Slurm error"), blank=True, default="")
    sync_error_at = models.DateTimeField(_("Slurm error at"), null=True, blank=True)
    end_warned_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created"]
        verbose_name = _("GPU priority request")
        verbose_name_plural = _("GPU priority requests")
        indexes = [models.Index(fields=["status", "end"]), models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.account} {self.gpu_count}x{self.gpu_type}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.end = compute_end(self.start, self.duration_days)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def removal_pending(self) -> bool:
        """Expired, but the removal of its QOS from Slurm is not confirmed yet (see REMOVAL_PENDING)."""
        return self.status == Status.EXPIRED and self.applied_at is not None and self.removed_at is None

    def usernames(self) -> list[str]:
        """Everyone who uses the QOS: the requester first, then the users who share it."""
        names = [self.requester.get_username()]
        names += [m.username for m in self.members.all() if m.username not in names]
        return names


def compute_end(start: datetime, days: int) -> datetime:
    return start + timedelta(days=days)


class PriorityMember(models.Model):
    """Another user who shares the priority (the requester is always included)."""

    request = models.ForeignKey(PriorityRequest, on_delete=models.CASCADE, related_name="members")
    username = models.CharField(_("user"), max_length=64)
    history = HistoricalRecords()

    class Meta:
        ordering = ["username"]
        constraints = [models.UniqueConstraint(fields=["request", "username"], name="priorities_member_unique")]

    def __str__(self) -> str:
        return self.username


class PriorityMessage(models.Model):
    """A message from staff, shown to the user with the request."""

    request = models.ForeignKey(PriorityRequest, on_delete=models.CASCADE, related_name="messages")
    author = models.CharField(_("author"), max_length=150)
    text = models.TextField(_("message"))
    created = models.DateTimeField(_("created"), default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["created", "pk"]

    def __str__(self) -> str:
        return f"{self.author}: {self.text[:40]}"


class PriorityAdmin(models.Model):
    """Who gets mail about new requests (manage.py priorities_admins); all staff when empty."""

    username = models.CharField(_("user"), max_length=150, unique=True)
    email = models.EmailField(_("email"))
    history = HistoricalRecords()

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username
