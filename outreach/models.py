"""What outreach sent (one row a mail, one finding a rule in it) and what each user asked not to get."""

from __future__ import annotations

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from outreach.rules import RULES


class Preference(models.Model):
    """A user's opt-outs: every report, or the rules named (by id). No row: every rule in force."""

    username = models.CharField(max_length=150, unique=True)
    opted_out = models.BooleanField(default=False)
    rules_off = models.JSONField(default=list, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("outreach preference")

    def __str__(self) -> str:
        return self.username

    def wants(self, rule: str) -> bool:
        return not self.opted_out and rule not in self.rules_off


class SentReport(models.Model):
    """One mail sent to one user: the rules it reported on are its findings."""

    username = models.CharField(max_length=150, db_index=True)
    email = models.CharField(max_length=254)
    cluster = models.CharField(max_length=64)
    sent = models.DateTimeField(db_index=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    subject = models.CharField(max_length=255)
    body = models.TextField()

    class Meta:
        ordering = ("-sent", "-pk")
        verbose_name = _("sent efficiency report")

    def __str__(self) -> str:
        return f"{self.username} {self.sent:%Y-%m-%d %H:%M}"


class Finding(models.Model):
    """A rule's part of a report: the jobs it named (job ids), how many matched and their unused cost."""

    report = models.ForeignKey(SentReport, on_delete=models.CASCADE, related_name="findings")
    username = models.CharField(max_length=150)  # the report's, so the rate limit is one index lookup
    rule = models.CharField(max_length=32)
    sent = models.DateTimeField()
    job_ids = models.JSONField(default=list)
    jobs = models.PositiveIntegerField(default=0)
    unused_cost = models.FloatField(null=True, blank=True)
    currency = models.CharField(max_length=8, blank=True)

    class Meta:
        indexes = [models.Index(fields=["username", "rule", "sent"], name="outreach_rate_limit")]

    def __str__(self) -> str:
        return f"{self.username} {self.rule}"

    @property
    def rule_title(self) -> str | Promise:
        rule = RULES.get(self.rule)
        return rule.title if rule else self.rule
