"""The user and job pages for each persona, with their data sources up or down."""

from __future__ import annotations

import copy
import re
import threading

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client
from django.urls import reverse

from jobstats import jobusage, listing
from slurm.decoders import JobState
from userportal.prometheus import MetricsSession

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def user_url(username="owner"):
    return reverse("jobstats:user", kwargs={"username": username})


def job_url(job_id, username="owner"):
    return reverse("jobstats:job", kwargs={"username": username, "job_id": job_id})


def page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


@pytest.fixture
def owner(client, personas):
    client.force_login(personas.owner)
    return client


# --- Access ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("persona", "status"), [("owner", 200), ("staff", 200), ("member", 403), ("outsider", 403)])
def test_user_and_job_pages_follow_the_owner_rule(client, personas, jobs, persona, status):
    client.force_login(getattr(personas, persona))
    assert client.get(user_url()).status_code == status
    assert client.get(job_url(jobs.gpu.id_job)).status_code == status
    assert (
        client.get(reverse("jobstats:job_cost", kwargs={"username": "owner", "job_id": jobs.gpu.id_job})).status_code
        == status
    )


def test_anonymous_is_sent_to_sign_in(jobs):
    response = Client().get(job_url(jobs.gpu.id_job))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_index_redirects_to_the_users_page(owner):
    response = owner.get(reverse("jobstats:index"))
    assert response["Location"] == user_url()


def test_another_users_job_id_is_not_found_under_ones_own_name(client, personas, jobs):
    client.force_login(personas.member)
    page(client, job_url(jobs.gpu.id_job, "member"), 404)


@pytest.mark.parametrize("job_id", ["5-1", "1-999999", "0", ",".join(["1"] * 120)])
def test_bad_id_lists_are_a_400(owner, jobs, job_id):
    page(owner, job_url(job_id), 400)


def test_an_unknown_job_is_a_404(owner, jobs):
    page(owner, job_url("987654"), 404)


# --- The user page --------------------------------------------------------------------------
def test_user_page_with_prometheus_down_shows_a_notice_instead_of_graphs(owner, jobs):
    html = page(owner, user_url())
    assert "Prometheus is not answering" in html
    assert "data-graph-url" not in html
    assert 'id="jobs-table"' in html
    assert html.count("<table") == 1
    assert 'id="jobs-table-config"' in html
    assert "<script>" not in html  # CSP: no inline script
    assert "vendor/datatables/dataTables.min.js" in html
    assert f"/secure/jobstats/owner/{jobs.gpu.id_job}/" in html


def test_user_page_with_prometheus_shows_use_and_graphs(owner, jobs, prometheus):
    html = page(owner, user_url())
    assert "Prometheus is not answering" not in html
    assert html.count("data-graph-url") == 4  # cpu, mem, gpu_utilization, gpu_power (no Lustre here)
    assert 'data-graph-url="/secure/jobstats/owner/graph/cpu.json"' in html
    assert "10.4" in html  # cores used over the last hour
    assert "vendor/plotly/plotly.min.js" in html
    assert re.search(r"<figcaption[^>]*>", html)


def test_user_page_says_so_as_soon_as_prometheus_stops_answering(owner, jobs, prometheus):
    """The last hour's use is read on every view: no figure kept from before the outage hides it."""
    assert "Prometheus is not answering" not in page(owner, user_url())
    prometheus.mode = "down"
    assert "Prometheus is not answering" in page(owner, user_url())


def page_while_prometheus_is_asked(client, url, monkeypatch) -> tuple[str, list[bool]]:
    """The page, and for each of its Prometheus queries (but "vector(1)") whether the Slurm DB was read meanwhile."""
    asking, read_while_asking = threading.Event(), threading.Event()
    overlapped: list[bool] = []
    query = MetricsSession.query

    def slow_query(session, expr, *, at=None):
        if "vector(1)" not in expr:
            asking.set()
            overlapped.append(read_while_asking.wait(timeout=2))
        return query(session, expr, at=at)

    def slurm_read(execute, sql, params, many, context):
        if asking.wait(timeout=2):
            read_while_asking.set()
        return execute(sql, params, many, context)

    monkeypatch.setattr(MetricsSession, "query", slow_query)
    with connections["slurm"].execute_wrapper(slurm_read):
        return page(client, url), overlapped


def test_user_page_asks_prometheus_while_it_reads_the_slurm_database(owner, jobs, prometheus, monkeypatch):
    """The page waits for Prometheus and for the Slurm database at once, not one after the other."""
    html, overlapped = page_while_prometheus_is_asked(owner, user_url(), monkeypatch)
    assert overlapped == [True]
    assert "10.4" in html  # the figures of the answer asked in the thread


def test_current_use_reads_the_running_and_pending_jobs_at_once(
    personas, settings, monkeypatch, django_assert_num_queries
):
    """One query of the open rows; the same figures as the two bounded queries a very long queue gets."""
    settings.JOBSTATS_METRICS = ["node"]  # the Slurm figures only
    s = personas.slurm
    s.job("owner", "def-owner", state=JobState.RUNNING, cpus_req=2)
    s.job("owner", "def-owner", state=JobState.RUNNING, cpus_req=3, gpus=1)
    s.job("owner", "def-owner", state=JobState.RUNNING, time_start=0)  # eligible, not started: not running
    s.job("owner", "def-owner", state=JobState.PENDING)
    s.job("owner", "def-owner", state=JobState.PENDING)
    s.job("owner", "def-owner", state=JobState.PENDING | 0x8000, time_start=0, time_end=0)  # not state 0: not counted
    s.job("owner", "def-owner")  # finished
    listing.current_use("owner", s.cluster, MetricsSession())  # the uid and the TRES, read once
    with django_assert_num_queries(1, using="slurm"):
        use = listing.current_use("owner", s.cluster, MetricsSession())
    assert (use.running, use.pending, use.cores.allocated, use.gpus.allocated) == (2, 2, 5, 1)
    monkeypatch.setattr(listing, "MAX_RUNNING_READ", 3)  # 4 open rows: the long queue's two queries
    with django_assert_num_queries(3, using="slurm"):
        assert listing.current_use("owner", s.cluster, MetricsSession()) == use


def test_user_page_sums_the_running_allocation(owner, jobs):
    html = page(owner, user_url())
    assert "used of 2 allocated" in html  # the running job's 2 cores


def test_user_page_filters_are_in_the_readers_language(owner, jobs, prometheus):
    """The state options are made once per language: each reader gets their own."""
    for language, pending in (("en", "Pending"), ("fr", "En attente"), ("en", "Pending")):
        html = owner.get(user_url(), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert f'<option value="PENDING">{pending}</option><option value="RUNNING">' in html
    assert '<option value="86400">1 d</option>' in html


def test_staff_can_open_any_users_page(client, personas, jobs):
    client.force_login(personas.staff)
    html = page(client, user_url())
    assert "Jobs of owner" in html


# --- The job page ---------------------------------------------------------------------------
def test_a_finished_jobs_kept_figures_do_not_hide_that_prometheus_is_down(owner, jobs, prometheus):
    html = page(owner, job_url(jobs.gpu.id_job))
    assert "data-graph-url" in html
    usage, _notice = jobusage.job_usage(MetricsSession(), jobs.gpu, [], now=jobs.gpu.time_end + 3600)
    assert usage is not None  # kept for a finished job (the figures no longer change)
    assert cache.get(f"jobstats:usage:{jobs.gpu.cluster}:{jobs.gpu.job_db_inx}") is not None
    prometheus.mode = "down"
    html = page(owner, job_url(jobs.gpu.id_job))
    assert "Prometheus is not answering" in html
    assert "data-graph-url" not in html  # no graph that could only answer 503


def test_job_page_without_prometheus_uses_the_accounting_figures(owner, jobs):
    html = page(owner, job_url(jobs.gpu.id_job))
    assert "Prometheus is not answering" in html
    assert "from Slurm&#x27;s accounting" in html
    assert "03:36:40 of CPU time" in html  # TotalCPU: 3600 + 400 + 9000 s over the steps
    assert "3072.0 MB" in html  # MaxRSS of step 0
    assert "data-graph-url" not in html
    # dependencies both ways
    assert f'href="{job_url(jobs.dep.id_job)}"' in html
    assert f'href="{job_url(jobs.dependent.id_job)}"' in html
    assert "afterok" in html
    # advice from the submit line, tokenised
    assert "excluded nodes (node09)" in html
    assert "may be requeued" in html
    assert "may not be requeued" not in html
    # summary facts
    assert "Resources requested and allocated" in html
    assert "1 × a100" in html
    assert "normal" in html  # the QOS name
    assert 'data-cost-url="/secure/jobstats/owner/' in html


def test_job_page_with_prometheus_measures_and_offers_graphs(owner, jobs, prometheus):
    html = page(owner, job_url(jobs.gpu.id_job))
    # finished, with steps: CPU time and memory are accounting's (as seff's), the GPUs the nodes'
    assert "from Slurm&#x27;s accounting for CPU time and memory (as sacct and seff), and from the nodes" in html
    assert "03:36:40 of CPU time of 4 cores" in html  # TotalCPU: 3600 + 400 + 9000 s over its steps
    running = page(owner, job_url(jobs.running.id_job))
    assert "measured on the nodes" in running  # a running job: its counters
    for name in ("cpu", "mem", "thread", "gpu_utilization", "gpu_power", "ethernet_bdw", "disk_used"):
        assert f'data-graph-name="{name}"' in html
    assert 'data-graph-name="lustre_ost"' not in html  # not collected here
    assert '<figure class="graph-figure' in html
    assert "<figcaption" in html


def test_job_page_asks_prometheus_while_it_reads_the_slurm_database(owner, jobs, prometheus, monkeypatch):
    """The job page waits for the exporter's figures and for the Slurm database at once, not one after the other."""
    html, overlapped = page_while_prometheus_is_asked(owner, job_url(jobs.running.id_job), monkeypatch)
    assert overlapped[:1] == [True]
    assert "measured on the nodes" in html  # the figures of the answer asked in the thread


def test_a_job_with_nulls_renders(owner, personas):
    job = personas.slurm.job(
        "owner", "def-owner", submit_line=None, work_dir="", nodelist="None assigned", tres_req="", tres_alloc=""
    )
    html = page(owner, job_url(job.id_job))
    assert "not recorded" in html


def test_pending_job_explains_the_wait(owner, jobs):
    html = page(owner, job_url(jobs.pending.id_job))
    assert "Why is this job waiting?" in html
    assert "QOS gpuprio allows gres/gpu:a100=8 for all its users together." in html
    assert "QOS gpuprio allows 2 running jobs per user." in html
    assert "Estimated start" in html
    assert "unknown" in html


def test_pending_job_uses_squeue_when_it_answers(owner, jobs, settings, tmp_path):
    script = tmp_path / "squeue"
    script.write_text('#!/bin/sh\necho "2030-01-02T03:04:05|QOSGrpGRES|4321"\n')
    script.chmod(0o755)
    settings.SLURM_SQUEUE = str(script)
    html = page(owner, job_url(jobs.pending.id_job))
    assert "QOSGrpGRES" in html
    assert "2030-01-02 03:04" in html
    assert "4321" in html
    assert "shared by all its jobs" in html


def test_running_job_shows_its_progress(owner, jobs):
    html = page(owner, job_url(jobs.running.id_job))
    assert "<progress" in html
    assert "% of the time limit" in html


def test_array_master_and_task_pages(owner, jobs):
    html = page(owner, job_url(jobs.array_master))
    for task in jobs.array_tasks:
        assert task.display_id in html
    task_html = page(owner, job_url(jobs.array_tasks[0].id_job))
    assert f"Array {jobs.array_master}" in task_html
    assert jobs.array_tasks[2].display_id in task_html


def test_an_array_task_url_redirects_to_the_tasks_own_job_id(owner, personas, jobs):
    task = jobs.array_tasks[1]
    task_url = job_url(f"{jobs.array_master}_{task.id_array_task}")
    response = owner.get(task_url + "?start=1")
    assert response.status_code == 302
    assert response.headers["Location"] == job_url(task.id_job) + "?start=1"
    assert owner.get(job_url(f"{jobs.array_master}_999")).status_code == 404
    assert owner.get(job_url("25_2_3")).status_code == 400
    staff, outsider = Client(), Client()
    staff.force_login(personas.staff)
    outsider.force_login(personas.outsider)
    assert staff.get(task_url).status_code == 302
    assert outsider.get(task_url).status_code == 403
    # the outsider's own page does not find the owner's task either
    assert outsider.get(job_url(f"{jobs.array_master}_{task.id_array_task}", "outsider")).status_code == 404


def test_a_reused_job_id_shows_the_newest_record_and_lists_the_others(owner, jobs):
    html = page(owner, job_url(jobs.requeued[0].id_job))
    assert "1 other record" in html
    assert "Requeued" in html


def test_a_list_of_jobs_gets_a_multi_job_page(owner, jobs, prometheus):
    html = page(owner, job_url(f"{jobs.dep.id_job}-{jobs.gpu.id_job}"))
    assert "2 jobs" in html
    assert f'href="{job_url(jobs.gpu.id_job)}"' in html
    assert f"/secure/jobstats/owner/{jobs.dep.id_job}-{jobs.gpu.id_job}/graph/cpu.json" in html


def test_the_multi_job_page_says_when_prometheus_is_down(owner, jobs):
    html = page(owner, job_url(f"{jobs.dep.id_job},{jobs.gpu.id_job}"))
    assert "Prometheus is not answering" in html
    assert "data-graph-url" not in html


@pytest.fixture
def slurm_db_down():
    original = connections["slurm"]
    settings_dict = copy.deepcopy(original.settings_dict)
    settings_dict["NAME"] = "/nonexistent-dir/slurm.sqlite3"
    broken = original.__class__(settings_dict, alias="slurm")
    connections["slurm"] = broken
    yield
    broken.close()
    connections["slurm"] = original


def test_pages_render_a_notice_when_the_slurm_database_is_down(owner, jobs, slurm_db_down):
    assert "not answering" in page(owner, job_url(jobs.gpu.id_job))
    assert "not answering" in page(owner, user_url())


# --- Query counts ---------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 25])
def test_job_page_query_count_does_not_grow(owner, personas, jobs, count, django_assert_max_num_queries):
    s = personas.slurm
    for index in range(count):
        s.step(jobs.gpu, id_step=index + 1, step_name="srun")
        s.job("owner", "def-owner", id_array_job=jobs.array_master, id_array_task=10 + index)
        s.job(
            "owner",
            "def-owner",
            time_submit=jobs.gpu.time_submit + 60 + index,
            submit_line=f"sbatch -d afterok:{jobs.gpu.id_job} x.sh",
        )
    with django_assert_max_num_queries(6), django_assert_max_num_queries(9, using="slurm"):
        html = page(owner, job_url(jobs.gpu.id_job))
    assert html.count("afterok") >= 1
    with django_assert_max_num_queries(6), django_assert_max_num_queries(9, using="slurm"):
        page(owner, job_url(jobs.array_tasks[0].id_job))


@pytest.mark.parametrize("count", [1, 25])
def test_user_page_query_count_does_not_grow(owner, personas, count, django_assert_max_num_queries):
    for _ in range(count):
        personas.slurm.job("owner", "def-owner", state=1)
        personas.slurm.job("owner", "def-owner")
    with django_assert_max_num_queries(4), django_assert_max_num_queries(7, using="slurm"):
        page(owner, user_url())
