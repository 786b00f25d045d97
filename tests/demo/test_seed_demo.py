"""manage.py seed_demo: deterministic, idempotent, realistic, and never aimed at a real database."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import override_settings

from slurm.decoders import INFINITE, MEM_PER_CPU, NO_VAL, JobState, decode_state, parse_tres
from slurm.hostlists import expand_hostlist
from slurm.models import GLOBAL_MODELS, Account, SlurmModel, SlurmUser, Tres, cluster_models
from slurm.visibility import accounts_of

pytestmark = [pytest.mark.django_db(databases=["default", "slurm"]), pytest.mark.usefixtures("slurm_tables")]

NOW = 1795334400  # 2026-11-23T04:00:00Z: fixed, so runs compare row for row
SMALL = {"users": 12, "accounts": 5, "jobs": 400, "days": 10, "now": NOW}


def seed(**options: Any) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **{**SMALL, **options})
    return out.getvalue()


def dump(model: type[SlurmModel]) -> list[tuple[Any, ...]]:
    names = [f.attname for f in model._meta.concrete_fields if f.column]
    return list(model.objects.order_by(*names).values_list(*names))


def dump_all() -> dict[str, list[tuple[Any, ...]]]:
    return {model._meta.db_table: dump(model) for model in (*GLOBAL_MODELS, *cluster_models("testcluster").all())}


@pytest.fixture
def seeded() -> str:
    return seed()


@pytest.fixture
def jobs(seeded: str) -> list[Any]:
    return list(cluster_models("testcluster").job.objects.all())


def test_same_seed_gives_identical_rows_and_reseeding_is_idempotent(seeded: str) -> None:
    first = dump_all()
    seed()
    assert dump_all() == first
    assert len(first["testcluster_job_table"]) == SMALL["jobs"]


def test_another_seed_gives_other_rows(seeded: str) -> None:
    first = dump_all()
    seed(seed=2)
    second = dump_all()
    assert second["testcluster_job_table"] != first["testcluster_job_table"]
    assert len(second["testcluster_job_table"]) == SMALL["jobs"]
    assert second["tres_table"] == first["tres_table"]  # the site's TRES do not depend on the seed


def test_progress_is_reported(seeded: str) -> None:
    assert f"jobs {SMALL['jobs']}/{SMALL['jobs']} (100%)" in seeded
    assert "Seeded testcluster" in seeded


def test_every_state_is_present(jobs: list[Any]) -> None:
    names = {decode_state(job.state).name for job in jobs}
    expected = {state for state in (
        "PENDING", "RUNNING", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
        "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REQUEUED", "RESIZING", "REVOKED",
    )}  # fmt: skip
    assert expected <= names


def test_now_has_pending_and_running_jobs(jobs: list[Any]) -> None:
    running = [job for job in jobs if job.state == JobState.RUNNING]
    pending = [job for job in jobs if job.state == JobState.PENDING]
    assert running
    assert pending
    assert all(job.time_end == 0 and 0 < job.time_start <= NOW for job in running)
    assert all(job.time_start == 0 and job.tres_alloc == "" and job.nodelist == "None assigned" for job in pending)
    assert any(job.timelimit == INFINITE for job in running)


def test_jobs_cancelled_while_pending_never_started(jobs: list[Any]) -> None:
    cancelled = [job for job in jobs if job.state == JobState.CANCELLED and job.time_start == 0]
    assert cancelled
    assert all(job.tres_alloc == "" and job.time_end > 0 and job.kill_requid is not None for job in cancelled)


def test_requeued_records_are_followed_by_a_newer_record(jobs: list[Any]) -> None:
    requeued = [job for job in jobs if job.state == 1024]
    assert requeued
    for old in requeued:
        newer = [job for job in jobs if job.id_job == old.id_job and job.time_submit > old.time_submit]
        assert len(newer) == 1
        assert "--requeue" in (old.submit_line or "--requeue")


def test_failures_carry_real_exit_codes(jobs: list[Any]) -> None:
    failed = [job for job in jobs if job.state == JobState.FAILED]
    assert all(job.exit.code or job.exit.signal for job in failed)
    assert {str(job.exit) for job in jobs if job.state == JobState.OUT_OF_MEMORY} == {"0:125"}


def test_arrays_and_het_jobs(jobs: list[Any]) -> None:
    tasks = [job for job in jobs if job.is_array_task]
    assert tasks
    assert all(job.display_id == f"{job.id_array_job}_{job.id_array_task}" for job in tasks)
    meta = [job for job in jobs if job.id_array_job and job.id_array_task == NO_VAL]
    assert meta
    assert all(job.array_task_str.startswith("0x") and job.state == JobState.PENDING for job in meta)
    het = sorted((job.het_job_id, job.het_job_offset) for job in jobs if job.het_job_id)
    assert het
    assert het[0][1] == 0
    assert het[1] == (het[0][0], 1)


def test_gpu_jobs_record_generic_and_typed_tres(jobs: list[Any]) -> None:
    catalog = Tres.catalog()
    assert (catalog.gpu, catalog.gpu_types) == (1001, {1002: "a100", 1003: "v100"})
    assert Tres.objects.get(id=1000).deleted == 1
    gpu_jobs = [job for job in jobs if job.gpu_count(catalog)]
    assert {model for job in gpu_jobs for model in job.gpus_by_type(catalog)} == {"a100", "v100"}
    for job in gpu_jobs:
        assert sum(job.gpus_by_type(catalog).values()) == job.gpu_count(catalog)
        assert job.partition == "gpu"


def test_mem_per_cpu_jobs_round_trip(jobs: list[Any]) -> None:
    per_cpu = [job for job in jobs if job.mem_req & MEM_PER_CPU]
    assert per_cpu
    job_model = cluster_models("testcluster").job
    for job in per_cpu[:5]:
        assert job_model.objects.get(mem_req=job.mem_req, job_db_inx=job.job_db_inx).mem_request.per_cpu
    for job in per_cpu:
        assert job.mem_req > 2**63
        assert job.memory_mb == job.mem_request.mb * job.cpus_req  # TRES mem agrees with mem_req


def test_multi_node_jobs_span_node_prefixes(jobs: list[Any]) -> None:
    multi = [job for job in jobs if job.nodes_alloc > 1]
    assert multi
    assert all(len(job.nodes) == job.nodes_alloc for job in multi)
    assert any("],cnx" in job.nodelist or ",cnx" in job.nodelist for job in multi)


def test_steps_agree_with_their_jobs(jobs: list[Any]) -> None:
    step_model = cluster_models("testcluster").step
    steps_by_job: dict[int, list[Any]] = {}
    for step in step_model.objects.all():
        steps_by_job.setdefault(step.job_db_inx, []).append(step)
    finished = [job for job in jobs if job.time_start and job.time_end and job.state == JobState.COMPLETED]
    assert finished
    for job in finished:
        steps = steps_by_job.get(job.job_db_inx, [])
        assert {step.step_id_text for step in steps} >= {"extern"}
        cpu = sum(step.cpu_seconds for step in steps)
        assert cpu <= job.elapsed_seconds() * job.cpus_req * 1.01 + 1
        peak = max((step.max_rss_bytes or 0) for step in steps)
        assert peak <= job.memory_mb * 2**20
    oom = [job for job in jobs if job.state == JobState.OUT_OF_MEMORY]
    for job in oom:
        assert (
            max((step.max_rss_bytes or 0) for step in steps_by_job[job.job_db_inx])
            >= job.memory_mb * 2**20 // job.nodes_alloc
        )
    assert not any(job.job_db_inx in steps_by_job for job in jobs if job.time_start == 0)


def test_users_accounts_and_the_dev_personas(seeded: str) -> None:
    names = set(SlurmUser.objects.values_list("name", flat=True))
    assert {"alice", "bob", "root"} <= names
    assert len(names) == SMALL["users"] + 1
    lab, department = accounts_of("alice")
    assert lab.startswith("def-")
    assert department == "physics"
    assert accounts_of("bob") == ["chem", "physics"]
    assoc = cluster_models("testcluster").assoc
    assert assoc.objects.filter(user="", acct="root").exists()
    assert all(assoc.objects.filter(user=name, is_def=1, deleted=0).count() == 1 for name in names - {"root"})
    assert Account.objects.filter(name__startswith="def-").exists()
    for person in names - {"root"}:
        assert 1 <= len(accounts_of(person)) <= 3


def test_events_and_job_scripts(seeded: str) -> None:
    models = cluster_models("testcluster")
    assert models.event.objects.filter(node_name="").exists()  # cluster TRES registrations
    assert models.event.objects.exclude(node_name="").exists()
    for event in models.event.objects.exclude(node_name=""):
        assert expand_hostlist(event.node_name) == [event.node_name]
        assert parse_tres(event.tres)[1] > 0
    scripts = set(models.job_script.objects.values_list("hash_inx", flat=True))
    used = set(models.job.objects.exclude(script_hash_inx=0).values_list("script_hash_inx", flat=True))
    assert scripts
    assert used
    assert used <= scripts


def test_second_cluster(slurm_tables: None) -> None:
    with override_settings(SLURM_CLUSTERS=["testcluster", "othercluster"]):
        seed(cluster="othercluster")
        assert cluster_models("othercluster").job.objects.count() == SMALL["jobs"]
        assert cluster_models("testcluster").job.objects.count() == 0


def test_refuses_a_database_that_is_not_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections["slurm"], "vendor", "mysql")
    with pytest.raises(CommandError, match="not SQLite"):
        seed()
    assert cluster_models("testcluster").job.objects.count() == 0


def test_allow_non_sqlite_lets_a_scratch_database_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections["slurm"], "vendor", "postgresql")
    seed(allow_non_sqlite=True, jobs=60)
    assert cluster_models("testcluster").job.objects.count() == 60


@pytest.mark.parametrize(
    ("options", "message"), [({"cluster": "nope"}, "Unknown Slurm cluster"), ({"jobs": 10}, "at least")]
)
def test_bad_options_are_command_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        seed(**options)
