"""The accounting database's global tables, with fixed names: QOS, TRES, accounts and users."""

from __future__ import annotations

import time

from django.db import models
from django.utils.translation import gettext_lazy as _

from slurm.decoders import TresCatalog
from slurm.fields import UnsignedBigIntegerField, UnsignedIntegerField
from slurm.models.base import SlurmModel, tinytext


class Qos(SlurmModel):
    """``qos_table``: unchanged from 22.05 to 26.05, so every column is declared."""

    creation_time = UnsignedBigIntegerField()
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(null=True, default=0)
    id = models.AutoField(primary_key=True)
    name = tinytext(unique=True)
    description = models.TextField(null=True)
    flags = UnsignedIntegerField(null=True, default=0)
    grace_time = UnsignedIntegerField(null=True)
    max_jobs_pa = models.IntegerField(null=True)
    max_jobs_per_user = models.IntegerField(null=True)
    max_jobs_accrue_pa = models.IntegerField(null=True)
    max_jobs_accrue_pu = models.IntegerField(null=True)
    min_prio_thresh = models.IntegerField(null=True)
    max_submit_jobs_pa = models.IntegerField(null=True)
    max_submit_jobs_per_user = models.IntegerField(null=True)
    max_tres_pa = models.TextField(default="")
    max_tres_pj = models.TextField(default="")
    max_tres_pn = models.TextField(default="")
    max_tres_pu = models.TextField(default="")
    max_tres_mins_pj = models.TextField(default="")
    max_tres_run_mins_pa = models.TextField(default="")
    max_tres_run_mins_pu = models.TextField(default="")
    min_tres_pj = models.TextField(default="")
    max_wall_duration_per_job = models.IntegerField(null=True)  # minutes
    grp_jobs = models.IntegerField(null=True)
    grp_jobs_accrue = models.IntegerField(null=True)
    grp_submit_jobs = models.IntegerField(null=True)
    grp_tres = models.TextField(default="")
    grp_tres_mins = models.TextField(default="")
    grp_tres_run_mins = models.TextField(default="")
    grp_wall = models.IntegerField(null=True)  # minutes
    preempt = models.TextField(default="")
    preempt_mode = models.IntegerField(null=True, default=0)
    preempt_exempt_time = UnsignedIntegerField(null=True)
    priority = UnsignedIntegerField(null=True, default=0)
    usage_factor = models.FloatField(default=1.0)
    usage_thres = models.FloatField(null=True)
    limit_factor = models.FloatField(null=True)

    class Meta(SlurmModel.Meta):
        db_table = "qos_table"

    def __str__(self) -> str:
        return self.name


class Tres(SlurmModel):
    """``tres_table``: the id → (type, name) catalogue. Dynamic ids (≥ 1001) differ per site."""

    creation_time = UnsignedBigIntegerField()
    deleted = models.SmallIntegerField(default=0)
    id = models.AutoField(primary_key=True)
    type = tinytext()
    name = tinytext(default="")

    class Meta(SlurmModel.Meta):
        db_table = "tres_table"

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type

    @classmethod
    def catalog(cls, using: str | None = None) -> TresCatalog:
        """A :class:`~slurm.decoders.TresCatalog` of every row, deleted ones included: old jobs still use them.

        Kept a minute in the process (CATALOG_MEMO_SECONDS): the table changes when a site adds a
        TRES type, and every job page and user page reads it.
        """
        found = _CATALOGS.get(using or "")
        if found is not None and found[1] > time.monotonic():
            return found[0]
        queryset = cls.objects.using(using) if using else cls.objects.all()
        catalog = TresCatalog(queryset.values_list("id", "type", "name"))
        _CATALOGS[using or ""] = (catalog, time.monotonic() + CATALOG_MEMO_SECONDS)
        return catalog


CATALOG_MEMO_SECONDS = 60
_CATALOGS: dict[str, tuple[TresCatalog, float]] = {}


def forget_catalogs() -> None:
    """Empty the process's memo of Tres.catalog() (tests, whose databases change the table)."""
    _CATALOGS.clear()


class Account(SlurmModel):
    """``acct_table`` (without ``flags``, which only 24.05 and later have)."""

    creation_time = UnsignedBigIntegerField()
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(null=True, default=0)
    name = tinytext(primary_key=True)
    description = models.TextField()  # sacctmgr lowercases it
    organization = models.TextField()

    class Meta(SlurmModel.Meta):
        db_table = "acct_table"

    def __str__(self) -> str:
        return self.name


class AdminLevel(models.IntegerChoices):
    NOT_SET = 0, _("Not set")
    NONE = 1, _("None")
    OPERATOR = 2, _("Operator")
    ADMINISTRATOR = 3, _("Administrator")


class SlurmUser(SlurmModel):
    """``user_table``: Slurm users by name. There is no uid here; jobs carry the uid (``id_user``)."""

    creation_time = UnsignedBigIntegerField()
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(null=True, default=0)
    name = tinytext(primary_key=True)
    admin_level = models.SmallIntegerField(default=AdminLevel.NONE, choices=AdminLevel.choices)

    class Meta(SlurmModel.Meta):
        db_table = "user_table"

    def __str__(self) -> str:
        return self.name


GLOBAL_MODELS: tuple[type[SlurmModel], ...] = (Qos, Tres, Account, SlurmUser)
