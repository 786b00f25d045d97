"""Job scripts uploaded by the Slurm prolog (slurm_prolog/), for clusters without AccountingStoreFlags=job_script."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobScript(models.Model):
    """The batch script of one Slurm job, as the uploader read it from slurmctld's spool.

    A job is (cluster, id_job, time_submit): Slurm reuses job ids after a wrap or a state reset,
    and a requeue keeps the id with a new time_submit (domain 1.4). TrailblazingTurtle's uploader
    sends the id only; jobstats.jobscripts.store_script then takes time_submit from the job
    table, or leaves it NULL when slurmdbd does not know the job yet (matched by received_at).

    The unique constraint catches duplicate uploads of a known submission. NULLs are distinct
    in SQL, so duplicates of an unresolved upload are caught in store_script instead; a partial
    unique index would do it in the database, but MariaDB has none. The script itself is in no
    key or index: MariaDB cannot index a LONGTEXT.
    """

    cluster = models.CharField(_("cluster"), max_length=64)
    id_job = models.PositiveBigIntegerField(_("job ID"))
    time_submit = models.BigIntegerField(
        _("submit time"), null=True, blank=True, help_text=_("Seconds since the epoch, as in the job table.")
    )
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    submit_script = models.TextField(_("job script"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )

    class Meta:
        verbose_name = _("job script")
        verbose_name_plural = _("job scripts")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "id_job", "time_submit"], name="jobstats_jobscript_unique_job"),
        ]
        indexes = [models.Index(fields=["received_at"], name="jobstats_jobscript_received")]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.id_job}"
