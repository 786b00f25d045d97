"""Efficiency outreach against the real stack: its finished jobs (slurmdbd), its SMTP server (aiosmtpd -> Maildir).

In-process (this checkout's code): the beat task runs on the stack's accounting database and mails
through the stack's SMTP server; the stack's `exit-3` job (bob: one core, `sleep 1`) is the job with
poor CPU use. Its CPU efficiency in the mail is seff's (sacct TotalCPU ÷ AllocCPUS × ElapsedRaw).
"""

from __future__ import annotations

import email
import os
import time
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command

from outreach import services, tasks
from outreach.models import Finding, SentReport
from slurm.sacct import parse_total_cpu

pytestmark = pytest.mark.django_db(databases=["default", "slurm"], transaction=True)


@pytest.fixture
def live(settings, stack_dir):
    settings.SLURM_CLUSTERS = [os.environ.get("SLURM_CLUSTERS", "testcluster").split(",")[0]]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # the stack's aiosmtpd
    settings.PORTAL_MODULES = [*settings.PORTAL_MODULES, "outreach"]
    settings.PORTAL_BASE_URL = "http://127.0.0.1:8080"
    settings.OUTREACH_RULES = ["low-cpu"]
    settings.OUTREACH_CPU_MIN_CORE_HOURS = 0  # the stack's jobs last seconds
    settings.OUTREACH_WINDOW_DAYS = 3650
    settings.OUTREACH_JOBS_PER_MAIL = 100  # every job of bob's listed
    cache.delete(services.LOCK_KEY)
    return stack_dir


def exit3(stack_dir: Path, slurm_cmd) -> dict:
    lines = (stack_dir / "data" / "jobs" / "batch.txt").read_text().split()
    [job_id] = [jobid for name, jobid, _wait in (line.split("|") for line in lines if line) if name == "exit-3"]
    argv = ["sacct", "-P", "-n", "-X", "-j", job_id, "--format=User,ElapsedRaw,TotalCPU,AllocCPUS,State"]
    user, elapsed, total_cpu, cpus, _state = slurm_cmd(argv).stdout.split()[0].split("|")
    return {"id": job_id, "user": user, "efficiency": parse_total_cpu(total_cpu) / (int(cpus) * int(elapsed))}


def mails_to(address: str, since: float) -> list[email.message.Message]:
    found = []
    for path in (Path(os.environ["PORTAL_STACK_MAILDIR"]) / "new").iterdir():
        if path.stat().st_mtime >= since - 1:
            message = email.message_from_bytes(path.read_bytes())
            if address in str(message["To"] or ""):
                found.append(message)
    return found


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.5)
    return predicate()


def test_a_stack_job_with_poor_cpu_use_is_mailed_once_through_the_stacks_smtp(live, slurm_cmd):
    truth = exit3(live, slurm_cmd)
    assert truth["user"] == "bob" and truth["efficiency"] < 0.5, truth
    started = time.time()
    address = f"bob+outreach-{os.getpid()}-{int(started)}@example.org"
    get_user_model().objects.create_user("bob", email=address)

    # The dry run shows it and sends nothing.
    call_command("outreach", "--dry-run", "--user", "bob")
    assert not SentReport.objects.exists()

    assert tasks.send_reports.apply().get() == 1  # the beat task, run in-process
    [message] = wait_for(lambda: mails_to(address, started))
    subject = str(make_header(decode_header(message["Subject"])))
    body = message.get_payload(decode=True).decode()
    assert "how your jobs on" in subject
    assert f"Job {truth['id']} " in body
    assert f"http://127.0.0.1:8080/secure/jobstats/bob/{truth['id']}/" in body
    assert "http://127.0.0.1:8080/secure/outreach/" in body
    finding = Finding.objects.get(rule="low-cpu", username="bob")
    assert truth["id"] in finding.job_ids
    # The job's CPU figure in the mail is seff's, within the ground truth's tolerance.
    lines = body.splitlines()
    first = next(i for i, text in enumerate(lines) if text.startswith(f"Job {truth['id']} "))
    cpu = next(text for text in lines[first + 1 :] if text.strip().startswith("- CPU "))
    percent = int(cpu.split("CPU ")[1].split(" %")[0])
    assert abs(percent - truth["efficiency"] * 100) <= 1, (cpu, truth)

    # Once per rule per period: a second run sends nothing more.
    assert tasks.send_reports.apply().get() == 0
    time.sleep(1)
    assert len(mails_to(address, started)) == 1
