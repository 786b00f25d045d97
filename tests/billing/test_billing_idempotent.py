"""billing's beat task run twice (a redelivered message): the second run changes nothing (tests/idempotency.py)."""

from __future__ import annotations

import pytest
from idempotency import run_twice

from billing import roles
from billing.models import JobIndexBlock
from slurm.models import SlurmUser
from slurm.router import allow_writes

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_sync_slurm_roles_gives_a_role_once(personas, settings, django_capture_on_commit_callbacks):
    settings.BILLING_ROLES_FROM_SLURM = True
    settings.BILLING_ROLES_SOURCE = "database"
    with allow_writes():
        SlurmUser.objects.using("slurm").filter(name="owner").update(admin_level=3)
    first, second = run_twice("billing.sync_slurm_roles", django_capture_on_commit_callbacks)
    assert (first, second) == ({"owner": roles.ADMINISTRATORS}, {})
    assert personas.owner.groups.filter(name=roles.ADMINISTRATORS).exists()


def test_sync_job_index_reads_a_block_once(personas, settings, django_capture_on_commit_callbacks):
    settings.BILLING_JOB_INDEX = True
    settings.BILLING_JOB_INDEX_GRACE_SECONDS = 60  # the personas' jobs ended 10 minutes ago: settled at once
    first, second = run_twice("billing.sync_job_index", django_capture_on_commit_callbacks)
    assert first["testcluster"]["rebuilt"] >= 1
    assert second["testcluster"]["rebuilt"] == 0
    assert JobIndexBlock.objects.filter(cluster="testcluster").exists()
