"""Efficiency outreach against the real stack: its finished jobs (slurmdbd), its SMTP server (aiosmtpd -> Maildir).

In-process (this checkout's code): the beat task runs on the stack's accounting database and mails
through the stack's SMTP server; the stack's `exit-3` job (bob: one core, `sleep 1`) is the job with
poor CPU use. Its CPU efficiency in the mail is seff's (sacct TotalCPU ÷ AllocCPUS × ElapsedRaw).
"""

from __future__ import annotations

import email
import os
import re
import time
from email.header import decode_header, make_header
from pathlib import Path

import pytest
import requests
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


def shib(user: str, *, staff: bool = False) -> requests.Session:
    """A session carrying the Shibboleth-style identity the stack's Apache turns into REMOTE_USER."""
    session = requests.Session()
    session.headers["X-Test-Remote-User"] = f"{user}@example.org"
    session.headers["X-Test-Affiliation"] = "staff@example.org;member@example.org" if staff else "member@example.org"
    return session


def csrf(page: requests.Response) -> str:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return token.group(1)


def test_through_apache_staff_run_a_dry_run_and_a_user_chooses_the_reports(stack_dir):
    """The stack's Apache (PORTAL_MODULES=all): the staff page's dry run reviews bob's real jobs, sending nothing."""
    apache = os.environ["PORTAL_STACK_URL"]
    staff = shib("staffer", staff=True)
    page = staff.get(f"{apache}/secure/outreach/staff/", timeout=60)
    assert page.status_code == 200 and "Cores allocated but idle" in page.text
    dry = staff.post(
        f"{apache}/secure/outreach/staff/dry-run/", data={"csrfmiddlewaretoken": csrf(page), "username": "bob"},
        timeout=120,
    )  # fmt: skip
    assert dry.status_code == 200, dry.text[:500]
    reviewed = re.search(r"Nothing was sent\. (\d+) jobs reviewed", dry.text)
    assert reviewed and int(reviewed.group(1)) >= 1, dry.text[:2000]
    assert shib("bob").get(f"{apache}/secure/outreach/staff/", timeout=60).status_code in (403, 404)

    bob = shib("bob")
    url = f"{apache}/secure/outreach/"
    page = bob.get(url, timeout=60)
    assert page.status_code == 200 and 'name="rule_low-cpu"' in page.text
    data = {"csrfmiddlewaretoken": csrf(page), "receive": "on", "rule_idle-gpu": "on"}
    assert bob.post(url, data=data, timeout=60, allow_redirects=False).status_code == 302
    boxes = dict(re.findall(r'<input type="checkbox" name="(\w[\w-]*)"([^>]*)>', bob.get(url, timeout=60).text))
    assert "checked" in boxes["receive"] and "checked" in boxes["rule_idle-gpu"], boxes
    assert "checked" not in boxes["rule_low-cpu"], boxes
    everything = {f"rule_{r}": "on" for r in ("idle-gpu", "low-cpu", "excess-memory", "short-jobs", "timeouts")}
    page = bob.get(url, timeout=60)
    bob.post(url, data={"csrfmiddlewaretoken": csrf(page), "receive": "on", **everything}, timeout=60)
