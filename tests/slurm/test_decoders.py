"""Decoders, tested with values from real slurmdbd 22.05 rows (reference stack samples)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import translation

from slurm.decoders import (
    INFINITE,
    MEM_PER_CPU,
    NO_VAL,
    NO_VAL64,
    STATE_FILTER_CHOICES,
    STATE_LABELS,
    JobState,
    MemReq,
    TresCatalog,
    decode_exit_code,
    decode_mem_req,
    decode_state,
    decode_timelimit,
    epoch_to_datetime,
    epoch_to_iso,
    format_duration,
    format_timelimit,
    format_tres,
    job_memory_mb,
    parse_delta_qos,
    parse_qos_list,
    parse_tres,
    state_filter,
    step_cpu_seconds,
)
from slurm.hostlists import compress_hostlist, expand_hostlist, format_ranges, hostlist_size
from slurm.ids import format_array_task_str, format_job_id, format_step_id, step_name

# slurm_acct_db.sample_rows.txt: alice's GPU job 1 (sbatch --gres=gpu:a100:1 -c 2 --mem=500M --qos=gpuprio)
SAMPLE_JOB = {
    "job_db_inx": 1,
    "id_job": 1,
    "state": 3,
    "exit_code": 0,
    "cpus_req": 2,
    "mem_req": 500,
    "nodelist": "node01",
    "nodes_alloc": 1,
    "node_inx": "0",
    "timelimit": 20160,
    "time_submit": 1795331444,
    "time_start": 1795331444,
    "time_end": 1795331448,
    "id_array_job": 0,
    "id_array_task": 4294967294,
    "het_job_id": 0,
    "het_job_offset": 4294967294,
    "tres_alloc": "1=2,2=500,3=18446744073709551614,4=1,5=2,1001=1,1002=1",
    "tres_req": "1=2,2=500,4=1,5=2,1001=1,1002=1",
}
# Its batch step.
SAMPLE_STEP = {
    "id_step": -5,
    "user_sec": 3,
    "user_usec": 989947,
    "sys_sec": 0,
    "sys_usec": 0,
    "tres_alloc": "1=2,2=500,4=1,1001=1,1002=1",
}
# The tres_table of the reference stack: (creation_time, deleted, id, type, name).
SAMPLE_TRES_ROWS = """\
1795331431	0	1	cpu
1795331431	0	2	mem
1795331431	0	3	energy
1795331431	0	4	node
1795331431	0	5	billing
1795331431	0	6	fs	disk
1795331431	0	7	vmem
1795331431	0	8	pages
1795331431	1	1000	dynamic_offset
1795331432	0	1001	gres	gpu
1795331432	0	1002	gres	gpu:a100"""


@pytest.fixture
def sample_catalog() -> TresCatalog:
    rows = []
    for line in SAMPLE_TRES_ROWS.splitlines():
        # The name column is empty for cpu, mem, ...; the trailing tab is not kept in this file.
        _created, _deleted, tres_id, type_, *name = line.split("\t")
        rows.append((int(tres_id), type_, name[0] if name else ""))
    return TresCatalog(rows)


# --- states ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "base", "name"),
    [
        (3, JobState.COMPLETED, "COMPLETED"),  # the sample job
        (0, JobState.PENDING, "PENDING"),
        (1, JobState.RUNNING, "RUNNING"),
        (4, JobState.CANCELLED, "CANCELLED"),
        (5, JobState.FAILED, "FAILED"),
        (6, JobState.TIMEOUT, "TIMEOUT"),
        (7, JobState.NODE_FAIL, "NODE_FAIL"),
        (8, JobState.PREEMPTED, "PREEMPTED"),
        (9, JobState.BOOT_FAIL, "BOOT_FAIL"),
        (10, JobState.DEADLINE, "DEADLINE"),
        (11, JobState.OUT_OF_MEMORY, "OUT_OF_MEMORY"),
    ],
)
def test_decode_state_base_states(raw: int, base: JobState, name: str) -> None:
    assert decode_state(raw) == (base, (), name)


def test_ten_is_deadline_not_end() -> None:
    assert decode_state(10).name == "DEADLINE"
    assert str(JobState.DEADLINE.label) == "Deadline"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (1024, "REQUEUED"),  # record closed by a requeue: base bits 0, still not PENDING
        (8192, "RESIZING"),
        (524288, "REVOKED"),
        (32768 | 1, "COMPLETING"),
        (2048, "REQUEUE_HOLD"),
        (4096 | 5, "SPECIAL_EXIT"),
    ],
)
def test_decode_state_flags_before_base(raw: int, name: str) -> None:
    assert decode_state(raw).name == name


def test_decode_state_flag_order_follows_job_state_string() -> None:
    # COMPLETING wins over REQUEUE, as in Slurm's job_state_string(); all set flags are kept.
    info = decode_state(0x8000 | 0x400 | 1)
    assert info.name == "COMPLETING"
    assert info.flags == ("COMPLETING", "REQUEUED")
    assert info.base == JobState.RUNNING


@pytest.mark.parametrize("raw", [12, 13, 255, 256 | 12, -1, None])
def test_decode_state_unknown_values_never_raise(raw: int | None) -> None:
    info = decode_state(raw)
    assert info.base == JobState.UNKNOWN
    assert info.name == "UNKNOWN"


def test_unnamed_flag_bits_fall_back_to_base() -> None:
    # JOB_LAUNCH_FAILED (256) has no name in job_state_string(): the base state shows.
    assert decode_state(256 | 5).name == "FAILED"


def test_state_labels_are_translated_lazily() -> None:
    assert str(decode_state(11).label) == "Out of memory"
    with translation.override("fr"):
        assert str(STATE_LABELS["COMPLETED"])  # lazy: evaluated in the active language, never raises


def test_every_filter_value_has_a_label_and_a_query() -> None:
    # One table for filter values and labels: TT's "OOM" filter never matched its "Oom" label.
    for name, label in STATE_FILTER_CHOICES:
        assert STATE_LABELS[name] is label
        state_filter(name)
    assert "OUT_OF_MEMORY" in dict(STATE_FILTER_CHOICES)


def test_state_filter_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="OOM"):
        state_filter("OOM")


# --- exit codes -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, "0:0"),  # the sample job
        (768, "3:0"),  # exit 3
        (256, "1:0"),
        (9, "0:9"),  # SIGKILL
        (15, "0:15"),  # a cancelled batch step
        (253, "0:125"),  # SIG_OOM, as sacct prints OUT_OF_MEMORY jobs
        (139 << 8, "11:0"),  # a shell reporting 128+11: sacct prints 11
        (NO_VAL, "0:0"),
        (-2, "0:0"),  # NO_VAL in the signed step column
        (None, "0:0"),
    ],
)
def test_decode_exit_code(raw: int | None, expected: str) -> None:
    assert str(decode_exit_code(raw)) == expected


# --- TRES -----------------------------------------------------------------------------------
def test_parse_tres_sample_alloc_skips_no_val64_energy() -> None:
    assert parse_tres(SAMPLE_JOB["tres_alloc"]) == {1: 2, 2: 500, 4: 1, 5: 2, 1001: 1, 1002: 1}
    assert NO_VAL64 not in parse_tres(SAMPLE_JOB["tres_alloc"]).values()


@pytest.mark.parametrize("text", [None, "", ",", "garbage", "1=", "=2"])
def test_parse_tres_tolerates_empty_and_malformed(text: str | None) -> None:
    assert parse_tres(text) == {}


def test_parse_tres_is_anchored() -> None:
    # TT's substring match for "1001=" also matched "11001=".
    tres = parse_tres("1=4,11001=7")
    assert 1001 not in tres
    assert tres[11001] == 7


def test_format_tres_is_id_ordered() -> None:
    assert format_tres({1002: 1, 1: 2, 2: 500}) == "1=2,2=500,1002=1"


def test_catalog_resolves_ids_by_type_and_name(sample_catalog: TresCatalog) -> None:
    assert (sample_catalog.cpu, sample_catalog.mem, sample_catalog.node, sample_catalog.billing) == (1, 2, 4, 5)
    assert sample_catalog.gpu == 1001
    assert sample_catalog.gpu_types == {1002: "a100"}
    assert sample_catalog.name_of(1002) == "gres/gpu:a100"
    assert sample_catalog.name_of(6) == "fs/disk"
    assert sample_catalog.name_of(4242) == "4242"


def test_gpu_count_uses_the_generic_id_only(sample_catalog: TresCatalog) -> None:
    alloc = parse_tres(SAMPLE_JOB["tres_alloc"])
    assert sample_catalog.gpu_count(alloc) == 1  # not 2: typed and generic are the same GPU
    assert sample_catalog.gpus_by_type(alloc) == {"a100": 1}


def test_gpu_ids_are_never_hard_coded() -> None:
    # Another site configured gres/gpu:v100 first: its generic id is 1002.
    catalog = TresCatalog(
        [(1, "cpu", ""), (1001, "gres", "gpu:v100"), (1002, "gres", "gpu"), (1003, "license", "matlab")]
    )
    tres = parse_tres("1=4,1001=2,1002=2,1003=1")
    assert catalog.gpu == 1002
    assert catalog.gpu_count(tres) == 2
    assert catalog.gpus_by_type(tres) == {"v100": 2}
    assert catalog.named(tres) == {"cpu": 4, "gres/gpu:v100": 2, "gres/gpu": 2, "license/matlab": 1}


def test_gpu_count_falls_back_to_typed_ids_without_a_generic_row() -> None:
    catalog = TresCatalog([(1001, "gres", "gpu:a100"), (1002, "gres", "gpu:v100")])
    assert catalog.gpu_count({1001: 2, 1002: 1}) == 3


# --- memory ---------------------------------------------------------------------------------
def test_mem_req_per_node_sample() -> None:
    assert decode_mem_req(500) == MemReq(500, False)
    assert job_memory_mb(500, cpus=2, nodes=1) == 500


def test_mem_req_per_cpu_flag() -> None:
    # --mem-per-cpu=500 is stored as 9223372036854776308 (domain 1.8).
    assert 9223372036854776308 == MEM_PER_CPU + 500
    assert decode_mem_req(9223372036854776308) == MemReq(500, True)
    assert job_memory_mb(9223372036854776308, cpus=4, nodes=1) == 2000


def test_memory_prefers_allocated_tres() -> None:
    # The observed running job: no --mem, -c 2, DefMemPerCPU=500 -> mem=1000 in TRES.
    assert job_memory_mb(MEM_PER_CPU + 500, cpus=2, nodes=1, tres_alloc={1: 2, 2: 1000}) == 1000
    assert job_memory_mb(4000, cpus=8, nodes=2) == 8000
    assert job_memory_mb(0, cpus=1, nodes=1) is None
    assert job_memory_mb(8000, cpus=1, nodes=0) == 8000  # pending: no nodes yet


# --- node lists -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "hosts"),
    [
        ("node01", ["node01"]),  # the sample job
        ("nc[10101-10103]", ["nc10101", "nc10102", "nc10103"]),
        ("nc[1-3,5,7-8]", ["nc1", "nc2", "nc3", "nc5", "nc7", "nc8"]),
        ("nc[10101-10102],ng[3-4]", ["nc10101", "nc10102", "ng3", "ng4"]),
        ("a1,b2", ["a1", "b2"]),
        ("node[001-003]", ["node001", "node002", "node003"]),
        ("node[08-10]", ["node08", "node09", "node10"]),
        ("cn[0019,0024],cnx[002,027]", ["cn0019", "cn0024", "cnx002", "cnx027"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("None assigned", []),
        ("", []),
        (None, []),
    ],
)
def test_expand_hostlist(expr: str | None, hosts: list[str]) -> None:
    assert expand_hostlist(expr) == hosts
    assert hostlist_size(expr) == len(hosts)


def test_expand_hostlist_keeps_malformed_groups() -> None:
    assert expand_hostlist("good[1-2],bad[3-x") == ["good1", "good2", "bad[3-x"]
    assert expand_hostlist("n[5-1]") == ["n[5-1]"]
    for odd in ("good[1-2],bad[3-x", "n[5-1]", " node7 ", "(null)", "None"):
        assert hostlist_size(odd) == len(expand_hostlist(odd)), odd


@pytest.mark.parametrize(
    "expr",
    [
        "node01",
        "nc[10101-10103]",
        "nc[1-3,5,7-8]",
        "nc[10101-10102],ng[3-4]",
        "node[001-010]",
        "cn[0019,0024],cnx[002,027]",
        "n[9-10]",
    ],
)
def test_compress_hostlist_round_trips(expr: str) -> None:
    assert compress_hostlist(expand_hostlist(expr)) == expr


def test_compress_hostlist_sorts_and_deduplicates() -> None:
    assert compress_hostlist(["n3", "n1", "n2", "n1", "login"]) == "n[1-3],login"


def test_format_ranges() -> None:
    assert format_ranges([0, 1, 2, 3, 5]) == "0-3,5"


# --- ids ------------------------------------------------------------------------------------
def test_format_job_id_plain_sample() -> None:
    assert format_job_id(1, 0, 4294967294, 0, 4294967294) == "1"


def test_format_job_id_array_task_and_het_component() -> None:
    assert format_job_id(1237, id_array_job=1234, id_array_task=3) == "1234_3"
    assert format_job_id(1241, het_job_id=1240, het_job_offset=1) == "1240+1"


def test_format_job_id_pending_array_meta_record() -> None:
    # slurmctld stores the pending task set as a hex bitmask: 0x3FE is tasks 1-9.
    assert format_array_task_str("0x3FE") == "1-9"
    assert format_job_id(1234, 1234, NO_VAL, array_task_str="0x3FE", array_max_tasks=2) == "1234_[1-9%2]"
    assert format_array_task_str("1-3,7") == "1-3,7"


@pytest.mark.parametrize(
    ("id_step", "name"),
    [(-5, "batch"), (-4, "extern"), (-6, "interactive"), (-3, "pending"), (0, "0"), (4294967291, "batch")],
)
def test_step_names(id_step: int, name: str) -> None:
    assert step_name(id_step) == name


def test_format_step_id() -> None:
    assert format_step_id(1, SAMPLE_STEP["id_step"]) == "1.batch"  # as sacct printed it
    assert format_step_id("1240+0", 0, 1) == "1240+0.0+1"


# --- times ----------------------------------------------------------------------------------
def test_epoch_to_datetime_sample() -> None:
    # domain 1.1: time_start=1795331444 is 2026-11-22T07:10:44Z
    assert epoch_to_datetime(SAMPLE_JOB["time_start"]) == datetime(2026, 11, 22, 7, 10, 44, tzinfo=UTC)
    assert epoch_to_datetime(0) is None
    assert epoch_to_datetime(None) is None
    assert epoch_to_datetime(NO_VAL64) is None


@pytest.mark.parametrize("epoch", [None, -1, 0, 1, 951782400, 1795331444, 253402300799, 253402300800, NO_VAL64])
def test_epoch_to_iso_is_epoch_to_datetimes_iso_utc(epoch) -> None:
    moment = epoch_to_datetime(epoch)
    assert epoch_to_iso(epoch) == (None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_timelimits() -> None:
    assert decode_timelimit(SAMPLE_JOB["timelimit"]) == 20160  # gpuprio MaxWall=14-0
    assert decode_timelimit(INFINITE) is None
    assert decode_timelimit(NO_VAL) is None
    assert format_timelimit(20160) == "14-00:00:00"
    assert format_timelimit(INFINITE) == "UNLIMITED"
    assert format_timelimit(NO_VAL) == "Partition_Limit"
    assert format_duration(4) == "00:00:04"


def test_step_cpu_seconds_sample() -> None:
    # Batch step of job 1: user_sec=3, user_usec=989947; sacct printed TotalCPU 00:03.989.
    assert step_cpu_seconds(3, 989947, 0, 0) == pytest.approx(3.989947)


def test_qos_lists() -> None:
    assert parse_qos_list(",1,") == [1]  # root's qos in the sample
    assert parse_qos_list("") == []
    assert parse_delta_qos(",+2,") == [("+", 2)]  # alice/physics after `qos+=gpuprio`
    assert parse_delta_qos(",-3,+4,") == [("-", 3), ("+", 4)]
