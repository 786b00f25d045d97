"""Billing's own data: rate tiers, rates with effective dates, GPU factors, budgets and receipts.

Rates are rows, never code: a change adds rows valid from now, so older jobs keep the rate of
their end time and a receipt keeps what it was billed at (its items store their costs, and the
receipt the rates). A job record is billed at most once: ``(cluster, job_id, submit)`` is a
unique key of ReceiptItem, so two requests billing the same job at once cannot both commit.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Resource(models.TextChoices):
    CPU = "cpu", _("CPU-hour")
    GPU = "gpu", _("GPU-hour")
    MEM = "mem", _("Memory GB-hour")


class Tier(models.Model):
    """A price list (the seed's ``mu``, ``gov`` and ``private``)."""

    slug = models.SlugField(primary_key=True, max_length=32)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return self.name


class AccountTier(models.Model):
    """Which tier a Slurm account pays; accounts without a row pay BILLING_DEFAULT_TIER."""

    cluster = models.CharField(max_length=64)
    account = models.CharField(max_length=255)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="accounts")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "account"], name="billing_account_tier_unique")]

    def __str__(self) -> str:
        return f"{self.account}@{self.cluster}: {self.tier_id}"


class Rate(models.Model):
    """The price of one unit of a resource in a tier, from ``valid_from`` until the next row."""

    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="rates")
    resource = models.CharField(max_length=8, choices=Resource.choices)
    price = models.DecimalField(max_digits=12, decimal_places=4)
    valid_from = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tier", "resource", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "resource", "valid_from"], name="billing_rate_unique"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="billing_rate_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.tier_id} {self.resource} {self.price} from {self.valid_from:%Y-%m-%d}"


class GpuFactor(models.Model):
    """GPU-hours of a model count ``factor`` times the tier's GPU rate (unknown models: 1)."""

    gpu_type = models.CharField(max_length=64, primary_key=True)
    factor = models.DecimalField(max_digits=8, decimal_places=4, default=Decimal(1))

    def __str__(self) -> str:
        return f"{self.gpu_type} × {self.factor}"


class Budget(models.Model):
    """What an account may spend between two dates (for the forecast and Open OnDemand's balance)."""

    cluster = models.CharField(max_length=64)
    account = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    start = models.DateField()
    end = models.DateField()

    class Meta:
        ordering = ["account", "-start"]
        constraints = [models.UniqueConstraint(fields=["cluster", "account", "start"], name="billing_budget_unique")]

    def __str__(self) -> str:
        return f"{self.account}@{self.cluster} {self.amount} {self.start}–{self.end}"


class Receipt(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")

    username = models.CharField(max_length=150, db_index=True)
    cluster = models.CharField(max_length=64)
    currency = models.CharField(max_length=8)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    job_count = models.PositiveIntegerField(default=0)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    rates = models.JSONField(default=dict)  # {tier: {resource: [[valid_from, price], ...]}, "gpu_factors": {...}}
    source = models.CharField(max_length=16, blank=True)  # the job source that answered
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.CharField(max_length=150, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.username} {self.total} {self.currency}"


class ReceiptItem(models.Model):
    """One billed job record, with the quantities and costs it was billed at."""

    receipt = models.ForeignKey(Receipt, on_delete=models.PROTECT, related_name="items")
    cluster = models.CharField(max_length=64)
    job_id = models.BigIntegerField()
    submit = models.DateTimeField()
    user = models.CharField(max_length=150)
    account = models.CharField(max_length=255)
    tier = models.CharField(max_length=32)
    partition = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=32, blank=True)
    end = models.DateTimeField()
    elapsed = models.BigIntegerField()
    alloc_tres = models.TextField(blank=True)
    gpu_type = models.CharField(max_length=64, blank=True)
    cpu_hours = models.DecimalField(max_digits=16, decimal_places=4)
    gpu_hours = models.DecimalField(max_digits=16, decimal_places=4)
    mem_gb_hours = models.DecimalField(max_digits=16, decimal_places=4)
    cpu_cost = models.DecimalField(max_digits=14, decimal_places=2)
    gpu_cost = models.DecimalField(max_digits=14, decimal_places=2)
    mem_cost = models.DecimalField(max_digits=14, decimal_places=2)
    cost = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["end", "job_id"]
        constraints = [
            # The job key: a job record can be on one receipt only, even with concurrent requests.
            models.UniqueConstraint(fields=["cluster", "job_id", "submit"], name="billing_item_job_key")
        ]
        # mark_billed's one query: a user's billed jobs ending in a window.
        indexes = [models.Index(fields=["cluster", "user", "end"], name="billing_item_user_end")]

    def __str__(self) -> str:
        return f"{self.cluster}:{self.job_id}@{self.submit:%Y-%m-%dT%H:%M:%S}"


class JobIndexState(models.Model):
    """Where billing's job index of a cluster stands (billing.job_index): one row per cluster.

    ``settled_before``: the index holds the finished jobs that ended before it (epoch seconds,
    slurmdbd's own time_end); later ends are read live. ``max_inx``: the highest job_db_inx the
    last sync saw; newer rows are read live. ``synced_at``: when that sync began (its lag).
    """

    cluster = models.CharField(max_length=64, primary_key=True)
    synced_at = models.DateTimeField()
    checked_at = models.DateTimeField(null=True)  # the last full sync (every block's figures compared)
    settled_before = models.BigIntegerField()
    max_inx = models.BigIntegerField()
    blocks = models.PositiveIntegerField(default=0)
    jobs = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)  # the last sync's duration

    def __str__(self) -> str:
        return f"{self.cluster} synced at {self.synced_at:%Y-%m-%d %H:%M:%S}"


class JobIndexBlock(models.Model):
    """One block of job ids (``job_db_inx // BLOCK_IDS``) of the index: its finished jobs' billing inputs.

    ``data``: the jobs' columns (billing.job_index's format, compressed numpy arrays), ``open_ids``
    the block's rows not in ``data`` (running, pending, or ended after ``settled_before``), read
    live. ``rows``, ``max_mod_time`` and ``steps_sum`` are what slurmdbd's tables held for the block
    when it was built: a difference means the block changed (an update, an insert, a purge).
    """

    cluster = models.CharField(max_length=64)
    block = models.BigIntegerField()
    rows = models.BigIntegerField()
    max_mod_time = models.BigIntegerField()
    steps_sum = models.CharField(max_length=200)
    built_at = models.BigIntegerField()  # epoch seconds
    next_settle = models.BigIntegerField(null=True)  # the first later end to move into data
    min_end = models.BigIntegerField(null=True)
    max_end = models.BigIntegerField(null=True)
    jobs = models.PositiveIntegerField(default=0)
    data = models.BinaryField()
    open_ids = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "block"], name="billing_job_index_block")]

    def __str__(self) -> str:
        return f"{self.cluster} block {self.block} ({self.jobs} jobs)"
