"""The factories the rest of the suite builds slurm rows with."""

from __future__ import annotations

import pytest
from slurm_factories import STANDARD_TRES, SlurmFixtures, uid_for

from slurm.decoders import NO_VAL, JobState, parse_tres
from slurm.models import Account, Qos, SlurmUser, Tres, cluster_models

pytestmark = [pytest.mark.django_db(databases=["default", "slurm"])]


def test_tres_is_idempotent_and_returns_the_catalog(slurm: SlurmFixtures) -> None:
    catalog = slurm.tres()
    assert Tres.objects.count() == len(STANDARD_TRES)
    assert catalog.gpu == 1001
    assert catalog.gpu_types == {1002: "a100", 1003: "v100"}


def test_account_builds_the_tree(slurm: SlurmFixtures) -> None:
    slurm.account("def-lab", parent="physics")
    assoc = cluster_models("testcluster").assoc.objects
    assert assoc.get(user="", acct="def-lab").parent_acct == "physics"
    assert assoc.get(user="", acct="physics").parent_acct == "root"
    assert assoc.get(user="", acct="root").qos == ",1,"
    assert assoc.filter(user="root", acct="root").exists()
    assert set(Account.objects.values_list("name", flat=True)) == {"root", "physics", "def-lab"}
    assert slurm.account("def-lab").id_assoc == assoc.get(user="", acct="def-lab").id_assoc  # idempotent


def test_user_returns_association_ids_and_marks_the_default(slurm: SlurmFixtures) -> None:
    ids = slurm.user("alice", ["physics", "chem"], default="chem")
    assoc = cluster_models("testcluster").assoc.objects
    assert set(ids) == {"physics", "chem"}
    assert assoc.get(pk=ids["chem"]).is_def == 1
    assert assoc.get(pk=ids["physics"]).is_def == 0
    assert SlurmUser.objects.filter(name="alice").exists()
    assert slurm.user("alice", ["physics"]) == {"physics": ids["physics"]}


def test_job_defaults_describe_a_completed_cpu_job(slurm: SlurmFixtures) -> None:
    job = slurm.job("alice", "physics")
    assert job.state_info.name == "COMPLETED"
    assert job.id_user == uid_for("alice") == 1001
    assert job.id_assoc == slurm.user("alice", ["physics"])["physics"]
    assert job.tres_alloc_dict == {1: 1, 2: 1000, 4: 1, 5: 1}
    assert job.elapsed_seconds() == 1800
    assert job.id_array_task == NO_VAL
    second = slurm.job("alice", "physics")
    assert second.id_job == job.id_job + 1


def test_job_gpu_and_overrides(slurm: SlurmFixtures) -> None:
    job = slurm.job("bob", "chem", gpus=2, gpu_type="v100", cpus_req=8, state=JobState.FAILED, exit_code=256)
    assert parse_tres(job.tres_req) == {1: 8, 2: 1000, 4: 1, 5: 8, 1001: 2, 1003: 2}
    assert str(job.exit) == "1:0"
    assert job.partition == "gpu"


def test_step_defaults_to_the_batch_step(slurm: SlurmFixtures) -> None:
    job = slurm.job("alice", "physics", gpus=1)
    step = slurm.step(job, user_sec=10)
    assert (step.id_step, step.step_name, step.nodelist) == (-5, "batch", "node01")
    assert 5 not in parse_tres(step.tres_alloc)  # steps carry no billing
    assert step.cpu_seconds == 10
    assert list(job.steps()) == [step]


def test_qos(slurm: SlurmFixtures) -> None:
    gpuprio = slurm.qos("gpuprio", priority=1000, grp_tres="1002=2")
    assert slurm.qos("gpuprio").pk == gpuprio.pk
    assert Qos.objects.get(name="gpuprio").priority == 1000
