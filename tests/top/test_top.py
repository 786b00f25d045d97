"""top: staff views of the largest users and of waste."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from slurm.decoders import JobState, format_tres

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_users_are_refused_every_top_page(client, personas):
    client.force_login(personas.owner)
    for name in ("index", "compute", "gpucompute", "largemem", "idlegpu", "filesystem"):
        assert client.get(reverse(f"top:{name}")).status_code == 403


def test_compute_ranks_by_cores_allocated_with_efficiency_and_flags(client, personas, prom):
    prom.samples = {
        "cpu_alloc": [
            ({"user": "owner", "account": "def-owner"}, 64.0),
            ({"user": "member", "account": "def-owner"}, 8.0),
        ],
        "cpu_used": [
            ({"user": "owner", "account": "def-owner"}, 16.0),
            ({"user": "member", "account": "def-owner"}, 7.9),
        ],
        "mem_alloc": [({"user": "owner", "account": "def-owner"}, 1000 * 1024**3)],
        "mem_used": [({"user": "owner", "account": "def-owner"}, 20 * 1024**3)],
    }
    client.force_login(personas.staff)
    response = client.get(reverse("top:compute") + "?window=now")
    assert response.status_code == 200
    owner, member = response.context["rows"]
    assert (owner.user, member.user) == ("owner", "member")
    assert owner.cpu_ratio == pytest.approx(0.25)
    assert owner.cpu_flag == "danger"
    assert owner.cpu_waste == pytest.approx(48.0)
    assert owner.mem_flag == "danger"  # 1000 GiB for 64 cores is over 4.4 GiB per core, and 2 % used
    assert member.cpu_flag == ""
    assert "sum_over_time" not in prom.queries[0]


def test_a_window_reports_unit_hours(client, personas, prom, settings):
    settings.TOP_RULES_INTERVAL = 30
    prom.samples = {"mem_alloc": [({"user": "owner", "account": "def-owner"}, 240.0 * 1024**3)]}
    client.force_login(personas.staff)
    response = client.get(reverse("top:compute") + "?window=7d")
    owner = next(r for r in response.context["rows"] if r.user == "owner")
    assert owner.get("mem_alloc") == pytest.approx(2.0)  # 240 samples × 30 s × 1 GiB
    assert "sum_over_time" in prom.queries[-1]
    assert "[604800s]" in prom.queries[-1]
    assert "cpu_alloc" not in prom.queries[-1]  # CPU over a window: the jobs' own figures


def test_a_windows_cpu_figures_are_saccts(client, personas, prom):
    """Core-hours from accounting, CPU-hours from TotalCPU: a 2-core job that burned 96 % is not "low"."""
    s = personas.slurm
    job = s.job("member", "def-owner", cpus_req=2, time_start=s.now - 3600, time_end=s.now - 3150)
    s.step(job, user_sec=860, sys_sec=5)  # TotalCPU 14:25 over 2 cores × 7:30
    client.force_login(personas.staff)
    rows = client.get(reverse("top:compute") + "?window=7d").context["rows"]
    member = next(r for r in rows if r.user == "member")
    # with the personas' own 30-minute one-core job (no steps: nothing used)
    assert member.get("cpu_alloc") == pytest.approx((2 * 450 + 1800) / 3600)
    assert member.get("cpu_used") == pytest.approx(865 / 3600)
    owner = next(r for r in rows if r.user == "owner")
    assert owner.cpu_ratio == pytest.approx(0.0) and owner.cpu_flag == "danger"


def test_a_running_jobs_cpu_over_a_window_comes_from_its_counters(personas, promtool):
    from exporter_series import ExporterJob, all_series
    from promtool_client import PromtoolClient

    from top.services import top_compute
    from userportal.prometheus import MetricsSession

    s = personas.slurm
    now = 300_000
    live = s.job("member", "def-owner", cpus_req=2, state=JobState.RUNNING, time_start=now - 450, time_end=0)
    counted = ExporterJob(live.id_job, start=now - 450, end=None, busy=1.92)
    client = PromtoolClient(all_series([counted], now))
    [row] = [r for r in top_compute(MetricsSession(client), 86400, s.cluster, now=now) if r.user == "member"]
    assert row.cpu_ratio == pytest.approx(counted.cpu_seconds(counted.scrapes(now)[-1]) / (2 * 450), abs=1e-6)
    assert row.cpu_ratio > 0.9 and row.cpu_flag == ""


def test_gpu_page_flags_users_whose_gpus_do_nothing(client, personas, prom):
    prom.samples = {
        "gpu_alloc": [({"user": "owner", "account": "def-owner"}, 4.0)],
        "gpu_used": [({"user": "owner", "account": "def-owner"}, 0.0)],
        "gpu_nonidle": [],
    }
    client.force_login(personas.staff)
    [row] = client.get(reverse("top:gpucompute") + "?window=now").context["rows"]
    assert row.gpu_flag == "danger"
    assert row.gpu_waste == pytest.approx(4.0)


def test_pages_render_a_notice_when_prometheus_is_down(client, personas, prom):
    prom.down = True
    client.force_login(personas.staff)
    for name in ("compute", "gpucompute", "idlegpu"):
        response = client.get(reverse(f"top:{name}"))
        assert response.status_code == 200
        assert response.context["unavailable"]


def _largemem_job(slurm, user, *, mem_mb=20480, state=JobState.COMPLETED, peak=None):
    job = slurm.job(user, "def-owner", partition="largemem", state=state, mem_req=mem_mb)
    if state != JobState.RUNNING:
        slurm.step(job, tres_usage_in_max=format_tres({2: peak or 0}))
    return job


def test_largemem_shows_ended_jobs_with_their_peak_memory(client, personas):
    _largemem_job(personas.slurm, "owner", peak=512 * 1024**2)
    client.force_login(personas.staff)
    response = client.get(reverse("top:largemem") + "?window=1d")
    [job] = response.context["jobs"]
    assert job.mem_alloc_gib == pytest.approx(20.0)
    assert job.mem_used_gib == pytest.approx(0.5)
    assert job.mem_flag == "danger"  # 2.5 % of 20 GiB on one core


def test_largemem_asks_prometheus_for_running_jobs_peak_with_the_cgroup_v2_fallback(personas, promtool):
    from exporter_series import ExporterJob, all_series
    from promtool_client import PromtoolClient

    from top.services import largemem_jobs
    from userportal.prometheus import MetricsSession

    now = 300_000
    s = personas.slurm
    v1 = s.job("owner", "def-owner", partition="largemem", state=JobState.RUNNING, mem_req=40960,
               time_start=now - 7200)  # fmt: skip
    v2 = s.job("member", "def-owner", partition="largemem", state=JobState.RUNNING, mem_req=40960,
               time_start=now - 7200)  # fmt: skip
    series = all_series(
        [
            ExporterJob(v1.id_job, start=now - 7200, end=None, mem_usage=lambda t: (30 if t < 3600 else 10) * 1024**3),
            ExporterJob(
                v2.id_job, start=now - 7200, end=None, mem_usage=12 * 1024**3, memory_max=False, cgroup_v2=True
            ),
        ],
        now,
    )
    jobs, missing = largemem_jobs(MetricsSession(PromtoolClient(series)), s.cluster, 0, now=now)
    used = {j.id_job: j.mem_used_gib for j in jobs}
    assert not missing
    assert used[v1.id_job] == pytest.approx(30.0)  # the cgroup's peak, not today's usage
    assert used[v2.id_job] == pytest.approx(12.0)  # no memory_max: the highest usage sampled


@pytest.mark.parametrize("jobs", [1, 3])
def test_largemem_query_count_is_flat(client, personas, jobs, django_assert_max_num_queries):
    for _ in range(jobs):
        _largemem_job(personas.slurm, "member", peak=1024**3)
    client.force_login(personas.staff)
    with django_assert_max_num_queries(8), django_assert_max_num_queries(4, using="slurm"):
        response = client.get(reverse("top:largemem") + "?window=1d")
    assert len(response.context["jobs"]) == jobs


def test_idle_gpus_at_zero_without_any_process_and_not_measured(client, personas, prom):
    now = int(time.time())
    running = personas.slurm.job("member", "def-owner", gpus=2, state=JobState.RUNNING, time_start=now - 600)
    blind = personas.slurm.job("owner", "def-owner", gpus=1, state=JobState.RUNNING, time_start=now - 600)
    prom.samples = {
        "max": [({"slurmjobid": "77", "user": "owner", "account": "def-owner"}, 0.0),
                ({"slurmjobid": "78", "user": "owner", "account": "def-owner"}, 55.0)],
        "gpus": [({"slurmjobid": "77", "user": "owner", "account": "def-owner"}, 2.0)],
        "present": [({"slurmjobid": "78"}, 1.0)],
        "seen": [({"slurmjobid": "78"}, 2.0), ({"slurmjobid": str(blind.id_job)}, 4.0)],
    }  # fmt: skip
    client.force_login(personas.staff)
    response = client.get(reverse("top:idlegpu") + "?window=1d")
    jobs, unmeasured = response.context["jobs"], response.context["unmeasured"]
    assert [(j.job_id, j.reason, j.gpus) for j in jobs] == [("77", "zero", 2), (str(running.id_job), "no-process", 2)]
    # processes, CPU and memory series but no GPU series: not idle, not "no process"
    assert [(j.job_id, j.reason) for j in unmeasured] == [(str(blind.id_job), "not-measured")]
    assert "GPUs not measured" in response.content.decode()


def test_idle_gpus_on_series_shaped_like_the_exporters(personas, promtool):
    from exporter_series import ExporterJob, all_series
    from promtool_client import PromtoolClient

    from top.services import idle_gpu_jobs
    from userportal.prometheus import MetricsSession

    s = personas.slurm
    now = 300_000
    a100 = "NVIDIA A100-SXM4-40GB"
    idle = s.job("owner", "def-owner", gpus=1, state=JobState.RUNNING, time_start=now - 600, time_end=0)
    blind = s.job("owner", "def-owner", gpus=1, state=JobState.RUNNING, time_start=now - 600, time_end=0)
    empty = s.job("member", "def-owner", gpus=1, state=JobState.RUNNING, time_start=now - 600, time_end=0)
    series = all_series(
        [
            ExporterJob(idle.id_job, start=now - 600, end=None, busy=0.1, gpus=(("0", a100, 0.0),)),
            ExporterJob(blind.id_job, start=now - 600, end=None, gpus=(("1", a100, 0.0),), gpu_measured=False),
        ],
        now,
    )
    found = idle_gpu_jobs(MetricsSession(PromtoolClient(series, now=now)), s.cluster, 0)
    assert {(j.job_id, j.reason) for j in found.idle} == {(str(idle.id_job), "zero"), (str(empty.id_job), "no-process")}
    assert [(j.job_id, j.reason) for j in found.unmeasured] == [(str(blind.id_job), "not-measured")]


def test_lustre_page_ranks_the_top_users_of_each_filesystem(client, personas, prom, settings):
    """lustre_exporter_slurm's rules as a real site has them: two filesystems, root, I/O with no user."""
    settings.TOP_LUSTRE = True
    many = [({"fs": "scratch", "user": f"user{i:02d}"}, 100.0 - i) for i in range(25)]
    prom.samples = {
        "mdt": [
            ({"fs": "lustre05", "user": "owner"}, 1250.5),
            ({"fs": "lustre05", "user": "member"}, 12.0),
            ({"fs": "lustre05", "user": "root"}, 90000.0),  # the servers' own housekeeping
            ({"fs": "lustre05"}, 3.0),  # login-node I/O lustre_exporter_slurm could not map
            *many,
        ],
        "ost": [({"fs": "lustre05", "user": "member"}, 512.25), ({"fs": "lustre05", "user": "owner"}, 40.0)],
    }
    client.force_login(personas.staff)
    response = client.get(reverse("top:filesystem"))
    assert response.status_code == 200
    tables = response.context["tables"]
    lustre05 = [(row.user, row.value) for row in tables["mdt"] if row.fs == "lustre05"]
    assert lustre05 == [("owner", 1250.5), ("member", 12.0), ("others", 3.0)]  # root left out
    scratch = [row.user for row in tables["mdt"] if row.fs == "scratch"]
    assert scratch == [f"user{i:02d}" for i in range(20)]  # the top 20 per filesystem
    assert [(row.user, row.value) for row in tables["ost"]] == [("member", 512.25), ("owner", 40.0)]
    content = response.content.decode()
    assert "1250.50" in content and "512.25" in content
    query = prom.queries[0]
    assert "lustre:metadata:rate3m_user" in query
    assert "lustre:read_bytes:rate3m_user" in query and "lustre:write_bytes:rate3m_user" in query
    assert "/ 1048576" in query  # bytes/s to MiB/s
    assert "[604800s]" in query  # the pages' period (TOP_DEFAULT_DAYS: 7)
    client.get(reverse("top:filesystem") + "?window=now")
    assert "[86400s]" in prom.queries[-1]  # "now" is a mean over the last 24 hours


def test_lustre_page_without_the_rules_asks_nothing(client, personas, prom, settings):
    settings.TOP_LUSTRE = False
    client.force_login(personas.staff)
    response = client.get(reverse("top:filesystem"))
    assert "set TOP_LUSTRE" in response.content.decode()
    assert prom.queries == []
