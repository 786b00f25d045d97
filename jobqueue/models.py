"""The GPU job queue's own data: job tokens, jobs, and the GPU nodes the ssh executor runs them on."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobToken(models.Model):
    """A job-queue API token, stored as its SHA-256 only (the key is printed once when issued).

    At most one usable token per user: issuing a new one revokes the others (jobqueue.tokens).
    Separate from userportal.ApiToken, whose tokens are for service accounts and never expire.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobqueue_tokens", verbose_name=_("user")
    )
    prefix = models.CharField(_("prefix"), max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    is_admin = models.BooleanField(_("queue administrator"), default=False)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    expires = models.DateTimeField(_("expires"))
    last_used = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked = models.BooleanField(_("revoked"), default=False)

    class Meta:
        verbose_name = _("job queue token")
        verbose_name_plural = _("job queue tokens")
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class JobStatus(models.TextChoices):
    # The seed server's status names: its clients compare them.
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING)
FINAL_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def new_job_id() -> str:
    return uuid.uuid4().hex


class Job(models.Model):
    """One submitted Python job and where it runs.

    `remote_id` is the executor's handle (the Slurm job id, or the node's job directory for ssh):
    with it any worker can reattach to a job that another, dead, worker started. `lease_until`
    keeps two workers from advancing the same job at once; `heartbeat` tells the reconciler
    (jobqueue.tasks.reconcile) which jobs nobody is following any more.
    """

    job_id = models.CharField(_("job id"), max_length=32, unique=True, default=new_job_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobqueue_jobs", verbose_name=_("user")
    )
    competition_id = models.CharField(_("competition"), max_length=100)
    project_id = models.CharField(_("project"), max_length=100)
    expected_time = models.PositiveIntegerField(_("expected time (s)"))
    filename = models.CharField(_("file name"), max_length=255)
    code = models.TextField(_("code"))
    warnings = models.JSONField(_("scan warnings"), default=list, blank=True)

    status = models.CharField(_("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    executor = models.CharField(_("executor"), max_length=100)
    node = models.CharField(_("node"), max_length=100, blank=True)
    remote_id = models.CharField(_("remote handle"), max_length=255, blank=True)
    cancel_requested = models.BooleanField(_("cancel requested"), default=False)
    exit_code = models.IntegerField(_("exit code"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    output = models.TextField(_("output"), blank=True)
    stderr = models.TextField(_("error output"), blank=True)
    result_file = models.CharField(_("results file"), max_length=500, blank=True)

    created = models.DateTimeField(_("submitted"), default=timezone.now, db_index=True)
    started = models.DateTimeField(_("started"), null=True, blank=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat = models.DateTimeField(_("last followed"), null=True, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    unreachable_since = models.DateTimeField(_("unreachable since"), null=True, blank=True)

    class Meta:
        verbose_name = _("queued job")
        verbose_name_plural = _("queued jobs")
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["status", "node"]), models.Index(fields=["user", "status"])]

    def __str__(self) -> str:
        return f"{self.job_id} ({self.user}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def identity(self) -> dict[str, str]:
        """The fields every answer about a job starts with, under the seed server's names."""
        return {
            "job_id": self.job_id,
            "user_id": self.user.get_username(),
            "competition_id": self.competition_id,
            "project_id": self.project_id,
            "status": self.status,
        }


class Node(models.Model):
    """A GPU node of the ssh executor (configured in JOBQUEUE_NODES); its row is the node's lock.

    A node runs one job at a time: a job starts only after locking this row and finding
    `current_job` empty, so two workers never start two jobs on one GPU node.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    current_job = models.OneToOneField(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("current job")
    )

    class Meta:
        verbose_name = _("GPU node")
        verbose_name_plural = _("GPU nodes")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
