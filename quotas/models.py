"""Robinhood's ACCT_STAT (read-only, alias ``robinhood``) and the portal's own quota data.

ACCT_STAT keeps running totals per (owner, group, entry type, HSM status) (domain 5): sizes in
bytes, ``blocks`` in 512-byte units, ``count`` in inodes. Its key is the four text columns; the
model declares them as a composite primary key and the portal only ever aggregates.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

BLOCK_BYTES = 512


class AcctStat(models.Model):
    robinhood_model = True  # quotas.router sends it to the robinhood alias and refuses writes

    pk = models.CompositePrimaryKey("uid", "gid", "type", "lhsm_status")
    uid = models.CharField(max_length=127)  # owner name, not a number
    gid = models.CharField(max_length=127)  # group: the project / allocation name
    type = models.CharField(max_length=8)  # file, dir, symlink, chr, blk, fifo, sock
    lhsm_status = models.CharField(max_length=10, default="")  # '', new, modified, archiving, synchro, released…
    size = models.BigIntegerField(default=0)
    blocks = models.BigIntegerField(default=0)
    count = models.BigIntegerField(default=0)
    sz0 = models.BigIntegerField(default=0)
    sz1 = models.BigIntegerField(default=0)
    sz32 = models.BigIntegerField(default=0)
    sz1K = models.BigIntegerField(default=0)
    sz32K = models.BigIntegerField(default=0)
    sz1M = models.BigIntegerField(default=0)
    sz32M = models.BigIntegerField(default=0)
    sz1G = models.BigIntegerField(default=0)
    sz32G = models.BigIntegerField(default=0)
    sz1T = models.BigIntegerField(default=0)

    class Meta:
        managed = False
        db_table = "ACCT_STAT"
        verbose_name = _("Robinhood accounting row")

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid} {self.type} {self.lhsm_status or '-'}"


class Quota(models.Model):
    """A group's storage allocation (QUOTAS_SOURCE=model): edited in the admin."""

    group = models.CharField(_("group"), max_length=127, unique=True)
    bytes_limit = models.BigIntegerField(_("bytes"), help_text=_("Project space, in bytes."))
    inodes_limit = models.BigIntegerField(_("inodes"), help_text=_("Project files and directories."))
    nearline_bytes_limit = models.BigIntegerField(
        _("nearline bytes"), default=0, help_text=_("0: no nearline allocation.")
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["group"]
        verbose_name = _("storage quota")

    def __str__(self) -> str:
        return self.group


class UsageSnapshot(models.Model):
    """A group's project use on one day: the history behind the trend and the projected fill date."""

    group = models.CharField(max_length=127)
    day = models.DateField()
    bytes_used = models.BigIntegerField()
    inodes_used = models.BigIntegerField()
    nearline_bytes = models.BigIntegerField(default=0)
    taken_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group", "day"]
        constraints = [models.UniqueConstraint(fields=["group", "day"], name="quotas_snapshot_group_day")]
        verbose_name = _("usage snapshot")

    def __str__(self) -> str:
        return f"{self.group} {self.day}"


class QuotaAlert(models.Model):
    """The highest threshold a group's use has passed, so each crossing is mailed once."""

    group = models.CharField(max_length=127, unique=True)
    level = models.PositiveSmallIntegerField(default=0)  # percent threshold passed; 0: none
    bytes_percent = models.FloatField(default=0)
    inodes_percent = models.FloatField(default=0)
    bytes_per_day = models.FloatField(null=True, blank=True)
    full_on = models.DateField(null=True, blank=True)  # projected date the quota fills up
    mailed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group"]
        verbose_name = _("quota alert")

    def __str__(self) -> str:
        return f"{self.group} ≥ {self.level} %"
