"""Billing against the real stack: the same jobs cost the same from each of the four sources.

Runs sacct and slurmrestd (a JWT minted with the stack's key) against the stack's real jobs, and
writes sacct's answer to a CSV file for the CSV source. Also: audit_verify catches a tampered
billing entry, and rates changed after a receipt leave that receipt unchanged.
"""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing import ledger, services
from billing.costs import price
from billing.models import Tier
from slurm.jobsource.csvfile import CsvSource
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.frame import JobQuery
from slurm.jobsource.sacct import SACCT_FIELDS, SacctSource
from slurm.jobsource.slurmrestd import SlurmrestdSource

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

COMPARED = ["cluster", "job_id", "submit", "user", "account", "state", "end", "elapsed", "alloc_cpus", "alloc_mem_mb"]
COMPARED += ["alloc_gpus", "gpu_type", "cpu_minor", "gpu_minor", "mem_minor", "cost_minor"]


@pytest.fixture(scope="module")
def window(stack_dir, django_db_blocker) -> JobQuery:
    """The window of the stack's first batch of jobs: later tests (priorities) run jobs under QOS
    they delete afterwards, which slurmrestd 22.05 can no longer serialise."""
    from slurm.models import cluster_models

    ids = [int(line.split("|")[1]) for line in (stack_dir / "data" / "jobs" / "batch.txt").read_text().splitlines()]
    with django_db_blocker.unblock():
        jobs = cluster_models("testcluster").job.objects.filter(id_job__in=ids, time_end__gt=0)
        last_end = max(job.time_end for job in jobs)
    end = datetime.fromtimestamp(last_end + 1, tz=UTC)
    return JobQuery(end - timedelta(days=30), end, "testcluster")


def frames(window: JobQuery, tmp_path) -> dict[str, object]:
    sacct = SacctSource("sacct", timeout=60)
    rest = SlurmrestdSource(
        os.environ["SLURMRESTD_URL"],
        user="slurm",
        token="",
        jwt_key=os.environ["SLURMRESTD_JWT_KEY"],
        version="v0.0.38",
    )
    result = {
        "database": DatabaseSource().fetch(window),
        "sacct": sacct.fetch(window),
        "slurmrestd": rest.fetch(window),
    }
    # The CSV source reads what sacct printed, saved as a CSV file with sacct's column names.
    import subprocess

    out = subprocess.run(
        sacct.argv(window),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    )
    path = tmp_path / "jobs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SACCT_FIELDS)
        for line in out.stdout.splitlines():
            writer.writerow(line.split("|"))
    result["csv"] = CsvSource(str(path)).fetch(window)
    return result


def test_the_same_jobs_cost_the_same_from_each_source(window, tmp_path):
    prices = services.price_list("testcluster")
    priced = {name: price(frame, prices) for name, frame in frames(window, tmp_path).items()}
    reference = priced["database"]
    assert len(reference) > 0, "the stack has no finished jobs in the last 30 days"
    expected = reference[COMPARED].sort_values(["job_id", "submit"]).reset_index(drop=True)
    for name in ("sacct", "slurmrestd", "csv"):
        got = priced[name][COMPARED].sort_values(["job_id", "submit"]).reset_index(drop=True)
        assert got.to_dict("records") == expected.to_dict("records"), name
        cpu = priced[name].sort_values(["job_id", "submit"])["total_cpu"].to_numpy()
        assert cpu == pytest.approx(reference.sort_values(["job_id", "submit"])["total_cpu"].to_numpy(), abs=0.01), name


def test_rates_changed_after_a_receipt_leave_it_unchanged(window):
    user = "alice"
    receipt = ledger.create_receipt(user, window, actor=user)
    total = receipt.total
    services.set_rates(Tier.objects.get(slug="mu"), {"cpu": Decimal("123.4567")}, actor="staff")
    receipt.refresh_from_db()
    assert receipt.total == total == sum(i.cost for i in receipt.items.all())


def test_audit_verify_catches_a_tampered_billing_entry():
    services.set_rates(Tier.objects.get(slug="gov"), {"cpu": Decimal("2.5")}, actor="staff")
    from userportal.models import AuditEntry

    entry = AuditEntry.objects.filter(action="billing.rates.update").latest("seq")
    with connection.cursor() as cursor:  # what an attacker with SQL access would do
        cursor.execute(f"UPDATE {AuditEntry._meta.db_table} SET actor = %s WHERE id = %s", ["someone-else", entry.pk])  # noqa: S608
    out = StringIO()
    with pytest.raises(CommandError, match="audit log broken"):
        call_command("audit_verify", stdout=out, stderr=out)
    assert f"{entry.seq}" in out.getvalue()
