"""Unmanaged models: per-cluster resolution, the 22.05 column subset, reading real rows, unsigned values."""

from __future__ import annotations

import pickle
import re
import threading
from typing import Any

import pytest
from django.apps import apps
from django.db import connections, models
from django.db.backends.mysql.base import DatabaseWrapper as MySQLDatabaseWrapper
from django.test import override_settings
from slurm_factories import SlurmFixtures

from slurm.decoders import MEM_PER_CPU, NO_VAL, NO_VAL64, JobState, state_filter
from slurm.fields import BlobTextField, UnsignedBigIntegerField, UnsignedIntegerField
from slurm.models import (
    GLOBAL_MODELS,
    Account,
    Qos,
    SlurmModel,
    SlurmUser,
    Tres,
    cluster_models,
    default_cluster,
)
from slurm.router import allow_writes
from slurm.schema import create_tables

# The column definitions of the real 22.05 schema (stack/infra/samples/slurm_acct_db.schema.sql,
# a mariadb-dump --no-data of a live slurmdbd), verbatim, one table per entry.
DDL_22_05: dict[str, str] = {
    "acct_table": """
`creation_time` bigint(20) unsigned NOT NULL
`mod_time` bigint(20) unsigned NOT NULL DEFAULT 0
`deleted` tinyint(4) DEFAULT 0
`name` tinytext NOT NULL
`description` text NOT NULL
`organization` text NOT NULL
""",
    "user_table": """
`creation_time` bigint(20) unsigned NOT NULL
`mod_time` bigint(20) unsigned NOT NULL DEFAULT 0
`deleted` tinyint(4) DEFAULT 0
`name` tinytext NOT NULL
`admin_level` smallint(6) NOT NULL DEFAULT 1
""",
    "qos_table": """
`creation_time` bigint(20) unsigned NOT NULL
`mod_time` bigint(20) unsigned NOT NULL DEFAULT 0
`deleted` tinyint(4) DEFAULT 0
`id` int(11) NOT NULL AUTO_INCREMENT
`name` tinytext NOT NULL
`description` text DEFAULT NULL
`flags` int(10) unsigned DEFAULT 0
`grace_time` int(10) unsigned DEFAULT NULL
`max_jobs_pa` int(11) DEFAULT NULL
`max_jobs_per_user` int(11) DEFAULT NULL
`max_jobs_accrue_pa` int(11) DEFAULT NULL
`max_jobs_accrue_pu` int(11) DEFAULT NULL
`min_prio_thresh` int(11) DEFAULT NULL
`max_submit_jobs_pa` int(11) DEFAULT NULL
`max_submit_jobs_per_user` int(11) DEFAULT NULL
`max_tres_pa` text NOT NULL DEFAULT ''
`max_tres_pj` text NOT NULL DEFAULT ''
`max_tres_pn` text NOT NULL DEFAULT ''
`max_tres_pu` text NOT NULL DEFAULT ''
`max_tres_mins_pj` text NOT NULL DEFAULT ''
`max_tres_run_mins_pa` text NOT NULL DEFAULT ''
`max_tres_run_mins_pu` text NOT NULL DEFAULT ''
`min_tres_pj` text NOT NULL DEFAULT ''
`max_wall_duration_per_job` int(11) DEFAULT NULL
`grp_jobs` int(11) DEFAULT NULL
`grp_jobs_accrue` int(11) DEFAULT NULL
`grp_submit_jobs` int(11) DEFAULT NULL
`grp_tres` text NOT NULL DEFAULT ''
`grp_tres_mins` text NOT NULL DEFAULT ''
`grp_tres_run_mins` text NOT NULL DEFAULT ''
`grp_wall` int(11) DEFAULT NULL
`preempt` text NOT NULL DEFAULT ''
`preempt_mode` int(11) DEFAULT 0
`preempt_exempt_time` int(10) unsigned DEFAULT NULL
`priority` int(10) unsigned DEFAULT 0
`usage_factor` double NOT NULL DEFAULT 1
`usage_thres` double DEFAULT NULL
`limit_factor` double DEFAULT NULL
""",
    "tres_table": """
`creation_time` bigint(20) unsigned NOT NULL
`deleted` tinyint(4) NOT NULL DEFAULT 0
`id` int(11) NOT NULL AUTO_INCREMENT
`type` tinytext NOT NULL
`name` tinytext NOT NULL DEFAULT ''
""",
    "job_table": """
`job_db_inx` bigint(20) unsigned NOT NULL AUTO_INCREMENT
`mod_time` bigint(20) unsigned NOT NULL DEFAULT 0
`deleted` tinyint(4) NOT NULL DEFAULT 0
`account` tinytext DEFAULT NULL
`admin_comment` text DEFAULT NULL
`array_task_str` text DEFAULT NULL
`array_max_tasks` int(10) unsigned NOT NULL DEFAULT 0
`array_task_pending` int(10) unsigned NOT NULL DEFAULT 0
`constraints` text DEFAULT ''
`container` text DEFAULT NULL
`cpus_req` int(10) unsigned NOT NULL
`derived_ec` int(10) unsigned NOT NULL DEFAULT 0
`derived_es` text DEFAULT NULL
`env_hash_inx` bigint(20) unsigned NOT NULL DEFAULT 0
`exit_code` int(10) unsigned NOT NULL DEFAULT 0
`flags` int(10) unsigned NOT NULL DEFAULT 0
`job_name` tinytext NOT NULL
`id_assoc` int(10) unsigned NOT NULL
`id_array_job` int(10) unsigned NOT NULL DEFAULT 0
`id_array_task` int(10) unsigned NOT NULL DEFAULT 4294967294
`id_block` tinytext DEFAULT NULL
`id_job` int(10) unsigned NOT NULL
`id_qos` int(10) unsigned NOT NULL DEFAULT 0
`id_resv` int(10) unsigned NOT NULL
`id_wckey` int(10) unsigned NOT NULL
`id_user` int(10) unsigned NOT NULL
`id_group` int(10) unsigned NOT NULL
`het_job_id` int(10) unsigned NOT NULL
`het_job_offset` int(10) unsigned NOT NULL
`kill_requid` int(10) unsigned DEFAULT NULL
`state_reason_prev` int(10) unsigned NOT NULL
`mcs_label` tinytext DEFAULT ''
`mem_req` bigint(20) unsigned NOT NULL DEFAULT 0
`nodelist` text DEFAULT NULL
`nodes_alloc` int(10) unsigned NOT NULL
`node_inx` text DEFAULT NULL
`partition` tinytext NOT NULL
`priority` int(10) unsigned NOT NULL
`script_hash_inx` bigint(20) unsigned NOT NULL DEFAULT 0
`state` int(10) unsigned NOT NULL
`timelimit` int(10) unsigned NOT NULL DEFAULT 0
`time_submit` bigint(20) unsigned NOT NULL DEFAULT 0
`time_eligible` bigint(20) unsigned NOT NULL DEFAULT 0
`time_start` bigint(20) unsigned NOT NULL DEFAULT 0
`time_end` bigint(20) unsigned NOT NULL DEFAULT 0
`time_suspended` bigint(20) unsigned NOT NULL DEFAULT 0
`gres_used` text NOT NULL DEFAULT ''
`wckey` tinytext NOT NULL DEFAULT ''
`work_dir` text NOT NULL DEFAULT ''
`submit_line` text DEFAULT NULL
`system_comment` text DEFAULT NULL
`tres_alloc` text NOT NULL DEFAULT ''
`tres_req` text NOT NULL DEFAULT ''
""",
    "step_table": """
`job_db_inx` bigint(20) unsigned NOT NULL
`deleted` tinyint(4) NOT NULL DEFAULT 0
`exit_code` int(11) NOT NULL DEFAULT 0
`id_step` int(11) NOT NULL
`step_het_comp` int(10) unsigned NOT NULL DEFAULT 4294967294
`kill_requid` int(10) unsigned DEFAULT NULL
`nodelist` text NOT NULL
`nodes_alloc` int(10) unsigned NOT NULL
`node_inx` text DEFAULT NULL
`state` smallint(5) unsigned NOT NULL
`step_name` text NOT NULL
`task_cnt` int(10) unsigned NOT NULL
`task_dist` int(11) NOT NULL DEFAULT 0
`time_start` bigint(20) unsigned NOT NULL DEFAULT 0
`time_end` bigint(20) unsigned NOT NULL DEFAULT 0
`time_suspended` bigint(20) unsigned NOT NULL DEFAULT 0
`user_sec` bigint(20) unsigned NOT NULL DEFAULT 0
`user_usec` int(10) unsigned NOT NULL DEFAULT 0
`sys_sec` bigint(20) unsigned NOT NULL DEFAULT 0
`sys_usec` int(10) unsigned NOT NULL DEFAULT 0
`act_cpufreq` double unsigned NOT NULL DEFAULT 0
`consumed_energy` bigint(20) unsigned NOT NULL DEFAULT 0
`container` text DEFAULT NULL
`req_cpufreq_min` int(10) unsigned NOT NULL DEFAULT 0
`req_cpufreq` int(10) unsigned NOT NULL DEFAULT 0
`req_cpufreq_gov` int(10) unsigned NOT NULL DEFAULT 0
`submit_line` text DEFAULT NULL
`tres_alloc` text NOT NULL DEFAULT ''
`tres_usage_in_ave` text NOT NULL DEFAULT ''
`tres_usage_in_max` text NOT NULL DEFAULT ''
`tres_usage_in_max_taskid` text NOT NULL DEFAULT ''
`tres_usage_in_max_nodeid` text NOT NULL DEFAULT ''
`tres_usage_in_min` text NOT NULL DEFAULT ''
`tres_usage_in_min_taskid` text NOT NULL DEFAULT ''
`tres_usage_in_min_nodeid` text NOT NULL DEFAULT ''
`tres_usage_in_tot` text NOT NULL DEFAULT ''
`tres_usage_out_ave` text NOT NULL DEFAULT ''
`tres_usage_out_max` text NOT NULL DEFAULT ''
`tres_usage_out_max_taskid` text NOT NULL DEFAULT ''
`tres_usage_out_max_nodeid` text NOT NULL DEFAULT ''
`tres_usage_out_min` text NOT NULL DEFAULT ''
`tres_usage_out_min_taskid` text NOT NULL DEFAULT ''
`tres_usage_out_min_nodeid` text NOT NULL DEFAULT ''
`tres_usage_out_tot` text NOT NULL DEFAULT ''
""",
    "assoc_table": """
`creation_time` bigint(20) unsigned NOT NULL
`mod_time` bigint(20) unsigned NOT NULL DEFAULT 0
`deleted` tinyint(4) NOT NULL DEFAULT 0
`is_def` tinyint(4) NOT NULL DEFAULT 0
`id_assoc` int(10) unsigned NOT NULL AUTO_INCREMENT
`user` tinytext NOT NULL DEFAULT ''
`acct` tinytext NOT NULL
`partition` tinytext NOT NULL DEFAULT ''
`parent_acct` tinytext NOT NULL DEFAULT ''
`lft` int(11) NOT NULL
`rgt` int(11) NOT NULL
`shares` int(11) NOT NULL DEFAULT 1
`max_jobs` int(11) DEFAULT NULL
`max_jobs_accrue` int(11) DEFAULT NULL
`min_prio_thresh` int(11) DEFAULT NULL
`max_submit_jobs` int(11) DEFAULT NULL
`max_tres_pj` text NOT NULL DEFAULT ''
`max_tres_pn` text NOT NULL DEFAULT ''
`max_tres_mins_pj` text NOT NULL DEFAULT ''
`max_tres_run_mins` text NOT NULL DEFAULT ''
`max_wall_pj` int(11) DEFAULT NULL
`grp_jobs` int(11) DEFAULT NULL
`grp_jobs_accrue` int(11) DEFAULT NULL
`grp_submit_jobs` int(11) DEFAULT NULL
`grp_tres` text NOT NULL DEFAULT ''
`grp_tres_mins` text NOT NULL DEFAULT ''
`grp_tres_run_mins` text NOT NULL DEFAULT ''
`grp_wall` int(11) DEFAULT NULL
`priority` int(10) unsigned DEFAULT NULL
`def_qos_id` int(11) DEFAULT NULL
`qos` blob NOT NULL DEFAULT ''
`delta_qos` blob NOT NULL DEFAULT ''
""",
    "event_table": """
`time_start` bigint(20) unsigned NOT NULL
`time_end` bigint(20) unsigned NOT NULL DEFAULT 0
`node_name` tinytext NOT NULL DEFAULT ''
`cluster_nodes` text NOT NULL DEFAULT ''
`reason` tinytext NOT NULL
`reason_uid` int(10) unsigned NOT NULL DEFAULT 4294967294
`state` int(10) unsigned NOT NULL DEFAULT 0
`tres` text NOT NULL DEFAULT ''
""",
    "job_script_table": """
`hash_inx` bigint(20) unsigned NOT NULL AUTO_INCREMENT
`last_used` timestamp NOT NULL DEFAULT current_timestamp()
`script_hash` text NOT NULL
`batch_script` longtext DEFAULT NULL
""",
}

COLUMN_RE = re.compile(r"^`(?P<name>\w+)` (?P<type>[a-z]+(?:\(\d+\))?(?: unsigned)?)(?P<rest>.*)$")
# Columns the models leave out on purpose (domain 1.18): gone in 25.05.
OMITTED = {"assoc_table": {"lft", "rgt"}}


def ddl_columns(table: str) -> dict[str, tuple[str, bool]]:
    """{column: (type, nullable)} from the quoted DDL."""
    columns = {}
    for line in DDL_22_05[table].strip().splitlines():
        match = COLUMN_RE.match(line)
        assert match, line
        columns[match["name"]] = (match["type"], "NOT NULL" not in match["rest"])
    return columns


def all_models() -> list[type[SlurmModel]]:
    cluster = cluster_models("testcluster")
    return [*GLOBAL_MODELS, *cluster.all()]


def table_key(model: type[SlurmModel]) -> str:
    return model._meta.db_table.removeprefix("testcluster_")


@pytest.mark.parametrize("model", all_models(), ids=table_key)
def test_model_columns_are_the_common_22_05_columns(model: type[SlurmModel]) -> None:
    ddl = ddl_columns(table_key(model))
    declared = {f.column for f in model._meta.concrete_fields if f.column}
    assert declared <= set(ddl), f"not in 22.05: {declared - set(ddl)}"
    assert set(ddl) - declared == OMITTED.get(table_key(model), set())


@pytest.mark.parametrize("model", all_models(), ids=table_key)
def test_model_field_types_follow_the_ddl(model: type[SlurmModel]) -> None:
    ddl = ddl_columns(table_key(model))
    for field in model._meta.concrete_fields:
        sql_type, nullable = ddl[field.column]
        assert field.null == nullable, f"{field.column}: NULL in DDL is {nullable}"
        if sql_type == "bigint(20) unsigned":
            assert isinstance(field, UnsignedBigIntegerField | models.BigAutoField), field.column
        elif sql_type == "int(10) unsigned":
            assert isinstance(field, UnsignedIntegerField | models.AutoField), field.column
        elif sql_type == "tinytext":
            assert isinstance(field, models.CharField), field.column
            assert field.max_length == 255, field.column
        elif sql_type == "blob":
            assert isinstance(field, BlobTextField), field.column


def test_assoc_model_has_no_nested_set_columns() -> None:
    # TT broke on 25.05 with "Unknown column lft": never select lft/rgt.
    assoc = cluster_models("testcluster").assoc
    sql = str(assoc.objects.all().query)
    assert "lft" not in sql
    assert "rgt" not in sql


# --- per-cluster resolution -----------------------------------------------------------------
def test_cluster_models_name_tables_after_the_cluster() -> None:
    models_ = cluster_models("testcluster")
    assert models_.job._meta.db_table == "testcluster_job_table"
    assert models_.step._meta.db_table == "testcluster_step_table"
    assert models_.assoc._meta.db_table == "testcluster_assoc_table"
    assert models_.event._meta.db_table == "testcluster_event_table"
    assert models_.job_script._meta.db_table == "testcluster_job_script_table"
    assert models_.job.__name__ == "Job_testcluster"
    assert models_.cluster == "testcluster"
    assert all(not model._meta.managed and model._meta.app_label == "slurm" for model in models_.all())


def test_cluster_models_are_cached() -> None:
    assert cluster_models("testcluster") is cluster_models("testcluster")


def test_unknown_cluster_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"Unknown Slurm cluster 'nope'.*SLURM_CLUSTERS"):
        cluster_models("nope")


def test_clusters_are_read_from_settings_at_call_time() -> None:
    with override_settings(SLURM_CLUSTERS=["narval", "beluga"]):
        assert default_cluster() == "narval"
        assert cluster_models("beluga").job._meta.db_table == "beluga_job_table"
        with pytest.raises(ValueError, match="testcluster"):
            cluster_models("testcluster")  # no longer configured: no longer resolves
    assert default_cluster() == "testcluster"
    with pytest.raises(ValueError, match="beluga"):
        cluster_models("beluga")


def test_cluster_names_are_validated() -> None:
    with override_settings(SLURM_CLUSTERS=["bad name; drop"]), pytest.raises(ValueError, match="not a valid"):
        cluster_models("bad name; drop")


def test_concurrent_first_use_builds_one_set_of_classes() -> None:
    results: list[Any] = []
    with override_settings(SLURM_CLUSTERS=["racecluster"]):
        threads = [threading.Thread(target=lambda: results.append(cluster_models("racecluster"))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 8
    assert all(result is results[0] for result in results)


@pytest.mark.django_db(databases=["default", "slurm"])
@pytest.mark.usefixtures("slurm_tables")
def test_two_clusters_keep_their_rows_apart() -> None:
    with override_settings(SLURM_CLUSTERS=["testcluster", "othercluster"]):
        here, there = SlurmFixtures("testcluster"), SlurmFixtures("othercluster")
        here.account("def-lab")
        here.user("alice", ["def-lab"])
        here.job("alice", "def-lab")
        assert cluster_models("testcluster").job.objects.count() == 1
        assert cluster_models("othercluster").job.objects.count() == 0
        there.job("alice", "def-lab")
        assert cluster_models("othercluster").job.objects.get().account == "def-lab"
        assert cluster_models("othercluster").assoc.objects.filter(user="alice").count() == 1


# --- reading real rows ----------------------------------------------------------------------
# slurm_acct_db.sample_rows.txt: job_table row 1 (alice's GPU job) and its batch step, as stored.
SAMPLE_JOB_ROW: dict[str, Any] = {
    "job_db_inx": 1, "mod_time": 1795331448, "deleted": 0, "account": "physics", "admin_comment": None,
    "array_task_str": None, "array_max_tasks": 0, "array_task_pending": 0, "constraints": "", "container": None,
    "cpus_req": 2, "derived_ec": 0, "derived_es": None, "env_hash_inx": 0, "exit_code": 0, "flags": 20,
    "job_name": "gpujob", "id_assoc": 5, "id_array_job": 0, "id_array_task": 4294967294, "id_block": None,
    "id_job": 1, "id_qos": 2, "id_resv": 0, "id_wckey": 0, "id_user": 1001, "id_group": 1001, "het_job_id": 0,
    "het_job_offset": 4294967294, "kill_requid": None, "state_reason_prev": 0, "mcs_label": "", "mem_req": 500,
    "nodelist": "node01", "nodes_alloc": 1, "node_inx": "0", "partition": "debug", "priority": 1000,
    "script_hash_inx": 0, "state": 3, "timelimit": 20160, "time_submit": 1795331444, "time_eligible": 1795331444,
    "time_start": 1795331444, "time_end": 1795331448, "time_suspended": 0, "gres_used": "", "wckey": "",
    "work_dir": "/tmp", "system_comment": None,
    "submit_line": 'sbatch --parsable -A physics --qos=gpuprio --gres=gpu:a100:1 -c 2 --mem=500M -J gpujob -o /tmp/smoke-%j.out --wrap echo CUDA=$CUDA_VISIBLE_DEVICES; timeout 4 sh -c "while :; do :; done"; true',
    "tres_alloc": "1=2,2=500,3=18446744073709551614,4=1,5=2,1001=1,1002=1",
    "tres_req": "1=2,2=500,4=1,5=2,1001=1,1002=1",
}  # fmt: skip
SAMPLE_STEP_ROW: dict[str, Any] = {
    "job_db_inx": 1, "deleted": 0, "exit_code": 0, "id_step": -5, "step_het_comp": 4294967294, "kill_requid": None,
    "nodelist": "node01", "nodes_alloc": 1, "node_inx": "0", "state": 3, "step_name": "batch", "task_cnt": 1,
    "task_dist": 0, "time_start": 1795331444, "time_end": 1795331448, "time_suspended": 0, "user_sec": 3,
    "user_usec": 989947, "sys_sec": 0, "sys_usec": 0, "act_cpufreq": 0, "consumed_energy": 0, "container": None,
    "req_cpufreq_min": 0, "req_cpufreq": 0, "req_cpufreq_gov": 0, "submit_line": None,
    "tres_alloc": "1=2,2=500,4=1,1001=1,1002=1", "tres_usage_in_ave": "3=0", "tres_usage_in_max": "",
    "tres_usage_in_tot": "3=0", "tres_usage_out_ave": "3=0", "tres_usage_out_tot": "3=0",
}  # fmt: skip


@pytest.fixture
def sample_job(slurm: SlurmFixtures) -> Any:
    models_ = cluster_models("testcluster")
    with allow_writes():
        models_.job(**SAMPLE_JOB_ROW).save(force_insert=True)
        models_.step(**SAMPLE_STEP_ROW).save(force_insert=True)
    return models_.job.objects.get(job_db_inx=1)


@pytest.mark.django_db(databases=["default", "slurm"])
def test_sample_job_reads_back_decoded(sample_job: Any) -> None:
    catalog = Tres.catalog()
    assert sample_job.display_id == "1"
    assert sample_job.state_info.name == "COMPLETED"
    assert str(sample_job.exit) == "0:0"
    assert sample_job.start_time.isoformat() == "2026-11-22T07:10:44+00:00"
    assert sample_job.elapsed_seconds() == 4
    assert sample_job.nodes == ["node01"]
    assert sample_job.tres_alloc_dict == {1: 2, 2: 500, 4: 1, 5: 2, 1001: 1, 1002: 1}
    assert sample_job.memory_mb == 500
    assert sample_job.gpu_count(catalog) == 1
    assert sample_job.gpus_by_type(catalog) == {"a100": 1}
    assert sample_job.timelimit_minutes == 20160
    assert not sample_job.is_array_task
    assert "--gres=gpu:a100:1" in sample_job.submit_line


@pytest.mark.django_db(databases=["default", "slurm"])
def test_sample_step_composite_key(sample_job: Any) -> None:
    step_model = cluster_models("testcluster").step
    step = step_model.objects.get(pk=(1, -5, NO_VAL))
    assert step.pk == (1, -5, 4294967294)
    assert step.display_id(sample_job.display_id) == "1.batch"
    assert step.cpu_seconds == pytest.approx(3.989947)
    assert step.max_rss_bytes is None  # ended before the first accounting sample
    assert list(sample_job.steps()) == [step]
    assert step_model.objects.filter(pk__in=[(1, -5, NO_VAL), (1, 0, NO_VAL)]).count() == 1


@pytest.mark.django_db(databases=["default", "slurm"])
@pytest.mark.usefixtures("slurm_tables")
def test_global_tables_read_back() -> None:
    with allow_writes():
        Account.objects.create(
            name="physics", description="physics dept", organization="science", creation_time=1795331433
        )
        SlurmUser.objects.create(name="root", admin_level=3, creation_time=1795331431)
        Qos.objects.create(
            name="gpuprio",
            description="gpuprio",
            priority=1000,
            grp_tres="1002=2",
            max_wall_duration_per_job=20160,
            creation_time=1795331440,
        )
    assert Account.objects.get(pk="physics").description == "physics dept"
    assert SlurmUser.objects.get(pk="root").get_admin_level_display() == "Administrator"


# --- unsigned 64-bit values -----------------------------------------------------------------
@pytest.mark.django_db(databases=["default", "slurm"])
@pytest.mark.parametrize("mem_req", [MEM_PER_CPU + 500, MEM_PER_CPU + 4000, NO_VAL64, 2**64 - 1, 2**63 - 1, 0])
def test_unsigned_bigint_round_trips_on_sqlite(slurm: SlurmFixtures, mem_req: int) -> None:
    slurm.account("def-lab")
    job = slurm.job("bob", "def-lab", mem_req=mem_req, cpus_req=4)
    job_model = cluster_models("testcluster").job
    assert job_model.objects.get(pk=job.pk).mem_req == mem_req
    assert job_model.objects.filter(mem_req=mem_req).count() == 1
    assert job_model.objects.filter(mem_req__in=[mem_req, 1]).count() == 1
    assert list(job_model.objects.values_list("mem_req", flat=True)) == [mem_req]


@pytest.mark.django_db(databases=["default", "slurm"])
def test_mem_per_cpu_job_memory(slurm: SlurmFixtures) -> None:
    slurm.account("def-lab")
    job = slurm.job("bob", "def-lab", mem_per_cpu=500, cpus_req=4, tres_alloc="")
    stored = cluster_models("testcluster").job.objects.get(pk=job.pk)
    assert stored.mem_request == (500, True)
    assert stored.memory_mb == 2000  # not 9.2e18 MB, TT's bug


@pytest.fixture
def mysql_connection() -> MySQLDatabaseWrapper:
    """A MySQL backend that is never connected: enough to compile SQL the way MariaDB would get it."""
    settings = {
        **connections["default"].settings_dict,
        "ENGINE": "django.db.backends.mysql",
        "NAME": "slurm_acct_db",
        "OPTIONS": {},
    }
    return MySQLDatabaseWrapper(settings, alias="compile_only")


def test_unsigned_values_pass_through_on_mysql(mysql_connection: MySQLDatabaseWrapper) -> None:
    job_model = cluster_models("testcluster").job
    # IntegerField's lookups would turn a value above 2**63 - 1 into "no rows" on MySQL.
    _sql, params = (
        job_model.objects.filter(mem_req=MEM_PER_CPU + 500).query.get_compiler(connection=mysql_connection).as_sql()
    )
    assert MEM_PER_CPU + 500 in params
    field = job_model._meta.get_field("mem_req")
    assert field.db_type(mysql_connection) == "bigint UNSIGNED"
    assert job_model._meta.get_field("id_job").db_type(mysql_connection) == "integer UNSIGNED"
    assert field.get_db_prep_value(NO_VAL64, mysql_connection) == NO_VAL64


def test_mysql_sql_quotes_the_reserved_partition_column(mysql_connection: MySQLDatabaseWrapper) -> None:
    job_model = cluster_models("testcluster").job
    sql, _params = (
        job_model.objects.filter(partition="gpu")
        .only("partition")
        .query.get_compiler(connection=mysql_connection)
        .as_sql()
    )
    assert "`testcluster_job_table`.`partition`" in sql


def test_blob_columns_read_as_text(mysql_connection: MySQLDatabaseWrapper) -> None:
    # mysqlclient returns the assoc table's blob columns (qos, delta_qos) as bytes.
    field = cluster_models("testcluster").assoc._meta.get_field("qos")
    assert field.from_db_value(b",1,", None, mysql_connection) == ",1,"  # type: ignore[attr-defined]
    assert field.db_type(mysql_connection) == "blob"


# --- state filters --------------------------------------------------------------------------
@pytest.mark.django_db(databases=["default", "slurm"])
def test_state_filter_matches_decode_state(slurm: SlurmFixtures) -> None:
    slurm.account("def-lab")
    raw_states = [3, 1024, 8192, 524288, 0x8000 | 1, 11, 10, 256 | 5]
    for raw in raw_states:
        slurm.job("bob", "def-lab", state=raw)
    job_model = cluster_models("testcluster").job
    expected = {"COMPLETED": [3], "REQUEUED": [1024], "RESIZING": [8192], "REVOKED": [524288], "COMPLETING": [32769],
                "OUT_OF_MEMORY": [11], "DEADLINE": [10], "FAILED": [256 | 5], "PENDING": [], "RUNNING": []}  # fmt: skip
    for name, states in expected.items():
        assert sorted(job_model.objects.filter(state_filter(name)).values_list("state", flat=True)) == states, name


# --- schema helpers -------------------------------------------------------------------------
@pytest.mark.django_db(databases=["default", "slurm"])
@pytest.mark.usefixtures("slurm_tables")
def test_create_tables_is_idempotent() -> None:
    tables = set(connections["slurm"].introspection.table_names())
    create_tables()  # everything exists: no schema editor, so it is fine even inside a transaction
    assert set(connections["slurm"].introspection.table_names()) == tables
    assert {
        "qos_table",
        "tres_table",
        "acct_table",
        "user_table",
        "testcluster_job_table",
        "othercluster_step_table",
    } <= tables


# --- model helpers --------------------------------------------------------------------------
@pytest.mark.django_db(databases=["default", "slurm"])
def test_running_job_has_no_end(slurm: SlurmFixtures) -> None:
    slurm.account("def-lab")
    job = slurm.job("bob", "def-lab", state=JobState.RUNNING)
    assert job.time_end == 0
    assert job.end_time is None
    assert job.elapsed_seconds() >= 1800


@pytest.mark.django_db(databases=["default", "slurm"])
def test_pending_job_uses_requested_tres(slurm: SlurmFixtures) -> None:
    catalog = slurm.tres()
    slurm.account("def-lab")
    job = slurm.job("bob", "def-lab", state=JobState.PENDING, gpus=2, gpu_type="v100")
    assert job.tres_alloc == ""
    assert job.nodes == []
    assert job.gpu_count(catalog) == 2
    assert job.gpus_by_type(catalog) == {"v100": 2}


@pytest.mark.django_db(databases=["default", "slurm"])
def test_assoc_helpers(slurm: SlurmFixtures) -> None:
    slurm.account("physics")
    ids = slurm.user("alice", ["physics"], delta_qos=",+2,")
    assoc = cluster_models("testcluster").assoc.objects.get(pk=ids["physics"])
    root = cluster_models("testcluster").assoc.objects.get(user="", acct="root")
    assert assoc.is_def == 1
    assert (assoc.delta_qos, root.qos) == (",+2,", ",1,")
    assert str(assoc) == "alice/physics"


def test_app_registry_builds_cluster_models_on_demand() -> None:
    # Unpickling a cached instance in a fresh process looks its class up by name.
    with override_settings(SLURM_CLUSTERS=["lazycluster"]):
        model = apps.get_model("slurm", "Job_lazycluster")
        assert model is cluster_models("lazycluster").job
        assert apps.get_model("slurm", "jobscript_lazycluster") is cluster_models("lazycluster").job_script
    with pytest.raises(LookupError):
        apps.get_model("slurm", "Job_notconfigured")
    with pytest.raises(LookupError):
        apps.get_model("slurm", "Nothing")


@pytest.mark.django_db(databases=["default", "slurm"])
def test_instances_pickle(slurm: SlurmFixtures) -> None:
    job = slurm.job("alice", "physics")
    assert pickle.loads(pickle.dumps(job)).job_db_inx == job.job_db_inx  # noqa: S301 - our own bytes
