"""Efficiency outreach: the rules over the job page's figures, the mail, opt-outs, the rate limit, the staff pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse

from jobstats import summary
from jobstats.domain.efficiency import JobUsage
from jobstats.jobusage import usage_cache_key
from outreach import services, tasks
from outreach.models import Finding, Preference, SentReport
from slurm.decoders import JobState
from userportal.summary import SummaryContext

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])
GIB = 1024**3


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SLURM_CLUSTERS = ["testcluster"]
    settings.PORTAL_BASE_URL = "https://portal.example.org"
    settings.OUTREACH_CPU_MIN_CORE_HOURS = 4
    cache.clear()


def idle_cpu_job(personas, user="owner", account="def-owner"):
    """8 cores for an hour, one minute of CPU: 0 % efficiency, 8 core-hours held."""
    slurm = personas.slurm
    job = slurm.job(user, account, cpus_req=8, time_start=slurm.now - 3600 - 600, time_end=slurm.now - 600)
    slurm.step(job, user_sec=60, tres_usage_in_max=f"2={GIB // 2}")
    return job


def test_a_job_with_idle_cores_mails_its_user_the_job_pages_figures_cost_and_advice(personas):
    job = idle_cpu_job(personas)
    [plan] = services.run()
    assert plan.sent == 1
    [message] = mail.outbox
    assert message.to == ["owner@example.org"]
    body = message.body
    assert "Cores allocated but idle" in body
    assert f"Job {job.id_job}" in body
    assert f"https://portal.example.org/secure/jobstats/owner/{job.id_job}/" in body
    assert "CPU 0 %" in body  # the job page's CPU measure
    assert "Cost of the unused share:" in body  # JOBSTATS_HARDWARE_COST_PER_CORE_HOUR × unused core-hours
    assert "https://portal.example.org" + reverse("outreach:preferences") in body
    # The advice the job page gives for this job (its advice rules over the same facts).
    [row] = [r for r in summary.recent_jobs(SummaryContext("owner", personas.staff, "testcluster", None))["jobs"]
             if r.job.id_job == job.id_job]  # fmt: skip
    assert row.advice >= 1
    [report] = SentReport.objects.all()
    [finding] = report.findings.all()
    assert (report.username, finding.rule, finding.job_ids, finding.jobs) == ("owner", "low-cpu", [str(job.id_job)], 1)
    assert finding.unused_cost == pytest.approx(8 * (1 - 60 / (8 * 3600)) * 0.0029431, rel=1e-3)


def test_the_figures_are_the_job_pages(personas):
    """The review's CPU and memory figures are those the user summary (and the job page) compute."""
    job = idle_cpu_job(personas)
    [reviewed] = [j for j in services.plan(cluster="testcluster").reports[0].findings[0].jobs]
    context = SummaryContext("owner", personas.staff, "testcluster", None)
    [row] = [r for r in summary.recent_jobs(context)["jobs"] if r.job.id_job == job.id_job]
    assert reviewed.cpu_fraction == row.efficiency.get("cpu").fraction
    assert reviewed.memory_fraction == row.efficiency.get("memory").fraction
    assert reviewed.unused_cost == row.efficiency.waste.cost
    assert [f.percent for f in reviewed.figures] == [m.percent for m in row.efficiency.measures]


def test_one_mail_per_user_and_rule_per_period(personas):
    idle_cpu_job(personas)
    services.run()
    services.run()
    assert len(mail.outbox) == 1
    later = datetime.now(tz=UTC) + timedelta(days=8)
    [plan] = services.run(now=later - timedelta(days=1))  # still inside the period: nothing
    assert plan.sent == 0 and plan.skipped["rate_limited"] == 0  # the job left the window too
    Finding.objects.update(sent=datetime.now(tz=UTC) - timedelta(days=8))
    [plan] = services.run()
    assert plan.sent == 1 and len(mail.outbox) == 2


def test_users_opt_out_of_one_rule_or_of_every_report(client, personas):
    idle_cpu_job(personas)
    client.force_login(personas.owner)
    page = client.get(reverse("outreach:preferences"))
    assert page.status_code == 200 and "rule_low-cpu" in page.content.decode()
    response = client.post(reverse("outreach:preferences"), {"receive": "on", "rule_idle-gpu": "on"})
    assert response.status_code == 302
    assert Preference.objects.get(username="owner").rules_off == sorted(
        ["low-cpu", "excess-memory", "short-jobs", "timeouts"]
    )
    [plan] = services.run()
    assert plan.sent == 0 and plan.skipped["opted_out"] == 1 and not mail.outbox
    client.post(reverse("outreach:preferences"), {"rule_low-cpu": "on"})  # every report off
    assert Preference.objects.get(username="owner").opted_out
    client.post(reverse("outreach:preferences"), {"receive": "on", "rule_low-cpu": "on"})
    [plan] = services.run()
    assert plan.sent == 1


def test_idle_gpus_memory_short_jobs_and_timeouts(personas, settings):
    slurm = personas.slurm
    settings.OUTREACH_SHORT_JOBS = 3
    settings.OUTREACH_TIMEOUT_JOBS = 2
    settings.OUTREACH_MEMORY_MIN_GB = 16
    gpu = slurm.job("member", "def-owner", gpus=2, time_start=slurm.now - 4 * 3600, time_end=slurm.now - 60)
    slurm.step(gpu, user_sec=3 * 3600, tres_usage_in_max=f"2={GIB}")
    measured = JobUsage(source="prometheus", cores_seen=1, gpus_seen=2, gpu_util=1.0)
    cache.set(usage_cache_key("testcluster", gpu.job_db_inx), measured)  # as the job page cached it
    fat = slurm.job("member", "def-owner", mem_req=64000, time_start=slurm.now - 7200, time_end=slurm.now - 60)
    slurm.step(fat, user_sec=7000, tres_usage_in_max=f"2={GIB}")
    for _ in range(3):
        slurm.job("outsider", "def-other", time_start=slurm.now - 100, time_end=slurm.now - 70)
    for _ in range(2):
        slurm.job("outsider", "def-other", state=JobState.TIMEOUT)
    [plan] = services.run(dry_run=True)
    found = {r.username: {f.rule.id: f for f in r.findings} for r in plan.reports}
    assert set(found["member"]) == {"idle-gpu", "excess-memory"}
    assert [j.id_job for j in found["member"]["idle-gpu"].jobs] == [gpu.id_job]
    assert found["member"]["idle-gpu"].unused_cost > 0  # GPU-hours × JOBSTATS_HARDWARE_COST_PER_GPU_HOUR
    assert [j.id_job for j in found["member"]["excess-memory"].jobs] == [fat.id_job]
    assert set(found["outsider"]) == {"short-jobs"}  # 2 time-outs of 6 jobs: under 80 %
    settings.OUTREACH_TIMEOUT_PERCENT = 30
    [plan] = services.run(dry_run=True, users=["outsider"], rules=["timeouts"])
    assert [f.rule.id for f in plan.reports[0].findings] == ["timeouts"]
    assert not mail.outbox and not SentReport.objects.exists()  # dry runs send and record nothing


def test_gpu_figures_unknown_without_prometheus_are_never_idle(personas):
    slurm = personas.slurm
    slurm.job("member", "def-owner", gpus=1, time_start=slurm.now - 4 * 3600, time_end=slurm.now - 60)
    [plan] = services.run(dry_run=True)
    assert not plan.reports
    assert plan.notices  # Prometheus does not answer in unit tests: said, not taken for 0 %


def test_the_command_dry_run_prints_and_sends_nothing(personas, capsys):
    job = idle_cpu_job(personas)
    call_command("outreach", "--dry-run", verbosity=2)
    out = capsys.readouterr().out
    assert "owner <owner@example.org>: low-cpu (1)" in out
    assert f"Job {job.id_job}" in out and "dry run, nothing sent" in out
    assert not mail.outbox and not SentReport.objects.exists()
    call_command("outreach")
    assert len(mail.outbox) == 1


def test_users_without_an_address_get_nothing_unless_a_domain_is_set(personas, settings, django_user_model):
    django_user_model.objects.filter(username="owner").update(email="")
    idle_cpu_job(personas)
    assert services.run()[0].sent == 0
    settings.OUTREACH_EMAIL_DOMAIN = "cluster.example.org"
    assert services.run()[0].sent == 1
    assert mail.outbox[0].to == ["owner@cluster.example.org"]


def test_the_beat_task_runs_only_when_the_module_is_listed(personas, settings):
    idle_cpu_job(personas)
    settings.PORTAL_MODULES = [m for m in settings.PORTAL_MODULES if m != "outreach"]
    assert tasks.send_reports() == 0 and not mail.outbox
    settings.PORTAL_MODULES = [*settings.PORTAL_MODULES, "outreach"]
    assert tasks.send_reports() == 1


def test_staff_see_what_was_sent_and_run_a_dry_run(client, personas):
    job = idle_cpu_job(personas)
    services.run()
    client.force_login(personas.owner)
    assert client.get(reverse("outreach:staff")).status_code in (403, 404)
    assert client.post(reverse("outreach:dry-run"), {}).status_code in (403, 404)
    client.force_login(personas.staff)
    html = client.get(reverse("outreach:staff"), {"rule": "low-cpu"}).content.decode()
    report = SentReport.objects.get()
    assert "owner@example.org" in html and str(job.id_job) in html
    assert reverse("outreach:report", kwargs={"report_id": report.pk}) in html
    assert client.get(reverse("outreach:report", kwargs={"report_id": report.pk})).status_code == 200
    assert "owner" not in client.get(reverse("outreach:staff"), {"rule": "timeouts"}).context["page"].object_list
    Finding.objects.update(sent=datetime.now(tz=UTC) - timedelta(days=30))
    dry = client.post(reverse("outreach:dry-run"), {"username": "owner"})
    assert dry.status_code == 200 and f"Job {job.id_job}" in dry.content.decode()
    assert len(mail.outbox) == 1 and SentReport.objects.count() == 1
    bad = client.post(reverse("outreach:dry-run"), {"username": "a b;c"})
    assert bad.status_code == 400 and "user name" in bad.content.decode()
    assert client.get(reverse("outreach:dry-run")).status_code == 405


def test_a_rule_switched_off_site_wide_keeps_the_users_choice(client, personas, settings):
    Preference.objects.create(username="owner", rules_off=["timeouts"])
    settings.OUTREACH_RULES = ["low-cpu", "short-jobs"]
    client.force_login(personas.owner)
    client.post(reverse("outreach:preferences"), {"receive": "on", "rule_low-cpu": "on"})
    assert sorted(Preference.objects.get(username="owner").rules_off) == ["short-jobs", "timeouts"]
