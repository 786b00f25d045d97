"""Efficiency outreach: find the patterns staff chase by hand in each user's last jobs, and mail them a report.

``plan`` reviews the jobs that ended in the window (userportal.jobreview: jobstats' figures and
advice, the same as the job page's), runs the rules in force (outreach.rules) on each user's jobs
and drops what a user opted out of or was told about within OUTREACH_PERIOD_DAYS. ``send`` mails
each report through Django's mail and records it (the staff page lists them); a dry run plans only.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from outreach.models import Finding, Preference, SentReport
from outreach.rules import OutreachRule, RuleFinding, rules_in_force
from userportal.jobreview import ReviewedJob, ReviewQuery, review_jobs

logger = logging.getLogger(__name__)

LOCK_KEY = "outreach:run-lock"
KINDS = {"cpu": _("CPU"), "memory": _("Memory"), "gpu": _("GPU"), "time": _("Time")}
LOCK_SECONDS = 3600


@dataclass
class Report:
    username: str
    email: str  # "" when the user has no address (the report is planned, never sent)
    cluster: str
    window_start: datetime
    window_end: datetime
    findings: list[RuleFinding]
    subject: str = ""
    body: str = ""


@dataclass
class Plan:
    reports: list[Report]
    jobs: int  # jobs reviewed
    truncated: bool = False
    notices: tuple[str, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)  # why findings were left out: opted-out, rate-limited
    sent: int = 0  # reports mailed (0 in a dry run)


def absolute(path: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{path}" if path else ""


def _emails(usernames: Collection[str]) -> dict[str, str]:
    found = dict(
        get_user_model().objects.filter(username__in=list(usernames)).exclude(email="").values_list("username", "email")
    )
    domain = settings.OUTREACH_EMAIL_DOMAIN
    return {user: found.get(user) or (f"{user}@{domain}" if domain else "") for user in usernames}


def _recently_told(usernames: Collection[str], now: datetime) -> set[tuple[str, str]]:
    since = now - timedelta(days=settings.OUTREACH_PERIOD_DAYS)
    rows = Finding.objects.filter(username__in=list(usernames), sent__gte=since).values_list("username", "rule")
    return set(rows)


def by_user(jobs: Iterable[ReviewedJob]) -> dict[str, list[ReviewedJob]]:
    grouped: dict[str, list[ReviewedJob]] = {}
    for job in jobs:
        if job.user:
            grouped.setdefault(job.user, []).append(job)
    return grouped


def plan(
    *,
    cluster: str,
    now: datetime | None = None,
    users: Collection[str] | None = None,
    rules: Collection[str] | None = None,
) -> Plan:
    """The reports a run would send now: the rules in force (or those named) over each user's jobs of the window."""
    now = now or datetime.now(tz=UTC)
    start = now - timedelta(days=settings.OUTREACH_WINDOW_DAYS)
    in_force: list[OutreachRule] = [r for r in rules_in_force() if rules is None or r.id in rules]
    measure_after = min(settings.OUTREACH_GPU_IDLE_HOURS * 3600, 86400.0)
    review = review_jobs(
        ReviewQuery(
            cluster,
            int(start.timestamp()),
            int(now.timestamp()),
            users=users,
            limit=settings.OUTREACH_MAX_JOBS,
            measure_gpus_after=measure_after if any(r.id == "idle-gpu" for r in in_force) else float("inf"),
        )
    )
    if review.truncated:
        logger.warning("outreach: more than %d jobs ended in the window; the oldest were left out", len(review.jobs))
    grouped = by_user(review.jobs)
    preferences = {p.username: p for p in Preference.objects.filter(username__in=list(grouped))}
    told = _recently_told(grouped, now)
    emails = _emails(grouped)
    skipped = {"opted_out": 0, "rate_limited": 0}
    reports = []
    for username in sorted(grouped):
        findings = []
        for rule in in_force:
            found = rule.find(grouped[username])
            if found is None:
                continue
            preference = preferences.get(username)
            if preference is not None and not preference.wants(rule.id):
                skipped["opted_out"] += 1
            elif (username, rule.id) in told:
                skipped["rate_limited"] += 1
            else:
                findings.append(found)
        if findings:
            report = Report(username, emails.get(username, ""), cluster, start, now, findings)
            report.subject, report.body = render(report)
            reports.append(report)
    return Plan(reports, len(review.jobs), review.truncated, review.notices, skipped)


def render(report: Report) -> tuple[str, str]:
    """The mail's subject and text: per rule its figures, the jobs with their page's figures and advice."""
    shown = settings.OUTREACH_JOBS_PER_MAIL
    sections = [
        {
            "finding": finding,
            "jobs": [
                {
                    "job": job,
                    "url": absolute(job.path),
                    "figures": [(KINDS.get(f.kind, f.kind), f) for f in job.figures],
                }
                for job in finding.jobs[:shown]
            ],
            "more": max(len(finding.jobs) - shown, 0),
        }
        for finding in report.findings
    ]
    context = {
        "report": report,
        "sections": sections,
        "site_name": settings.PORTAL_SITE_NAME,
        "preferences_url": absolute(reverse("outreach:preferences")),
        "period_days": settings.OUTREACH_PERIOD_DAYS,
    }
    subject = " ".join(render_to_string("outreach/email/report_subject.txt", context).split())
    return subject, render_to_string("outreach/email/report.txt", context)


def send(plan_: Plan, *, now: datetime | None = None) -> list[SentReport]:
    """Mail each report that has an address, and record it; a failed mail is logged and tried again next run."""
    now = now or datetime.now(tz=UTC)
    sent = []
    for report in plan_.reports:
        if not report.email:
            logger.info("outreach: no address for %s; report not sent", report.username)
            continue
        message = EmailMessage(
            report.subject, report.body, settings.DEFAULT_FROM_EMAIL, [report.email], bcc=settings.OUTREACH_BCC
        )
        try:
            message.send(fail_silently=False)
        except OSError:
            logger.exception("outreach: the report to %s could not be sent", report.username)
            continue
        sent.append(record(report, now))
    return sent


def record(report: Report, now: datetime) -> SentReport:
    with transaction.atomic():
        row = SentReport.objects.create(
            username=report.username,
            email=report.email,
            cluster=report.cluster,
            sent=now,
            window_start=report.window_start,
            window_end=report.window_end,
            subject=report.subject[:255],
            body=report.body,
        )
        Finding.objects.bulk_create(
            Finding(
                report=row,
                username=report.username,
                rule=finding.rule.id,
                sent=now,
                job_ids=[job.display_id for job in finding.jobs[: settings.OUTREACH_JOBS_PER_MAIL]],
                jobs=len(finding.jobs),
                unused_cost=finding.unused_cost,
                currency=finding.currency,
            )
            for finding in report.findings
        )
    return row


def run(
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    users: Collection[str] | None = None,
    rules: Collection[str] | None = None,
) -> list[Plan]:
    """One run over every cluster: plan, then send (not in a dry run). Runs never overlap (a cache lock)."""
    if not dry_run and not cache.add(LOCK_KEY, "1", LOCK_SECONDS):
        logger.warning("outreach: a run is still going; this one does nothing")
        return []
    try:
        plans = []
        for cluster in settings.SLURM_CLUSTERS:
            planned = plan(cluster=cluster, now=now, users=users, rules=rules)
            if not dry_run:
                planned.sent = len(send(planned, now=now))
            plans.append(planned)
        return plans
    finally:
        if not dry_run:
            cache.delete(LOCK_KEY)


def opt_out_choices() -> list[OutreachRule]:
    return rules_in_force()


def preference_of(username: str) -> Preference:
    return Preference.objects.filter(username=username).first() or Preference(username=username)


def save_preference(username: str, *, opted_out: bool, rules_off: Collection[str]) -> Preference:
    preference, _created = Preference.objects.update_or_create(
        username=username, defaults={"opted_out": opted_out, "rules_off": sorted(set(rules_off))}
    )
    return preference


def sent_reports(*, username: str = "", rule: str = "") -> QuerySet[SentReport]:
    reports = SentReport.objects.prefetch_related("findings")
    if username:
        reports = reports.filter(username=username)
    if rule:
        reports = reports.filter(findings__rule=rule).distinct()
    return reports
