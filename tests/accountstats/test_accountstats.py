"""accountstats: the index, the account page (per-user table, graphs, jobs) and their access."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accountstats import services
from userportal.prometheus import Series

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

ACCOUNT = "def-owner"


def test_index_lists_the_users_accounts_with_their_use(client, personas):
    client.force_login(personas.owner)
    response = client.get(reverse("accountstats:index"))
    assert response.status_code == 200
    [use] = response.context["accounts"]
    assert use.account == ACCOUNT
    assert use.jobs == 2  # the owner's and the member's
    assert use.users == {"owner", "member"}
    assert use.core_hours == pytest.approx(1.0)  # two 1-core jobs of 30 minutes


def test_outsider_is_refused_the_account_page(client, personas):
    client.force_login(personas.outsider)
    assert client.get(reverse("accountstats:account", kwargs={"account": ACCOUNT})).status_code == 403


def test_a_prefix_of_the_account_name_is_not_membership(client, personas):
    personas.slurm.account("def-owner_gpu")
    client.force_login(personas.owner)
    assert client.get(reverse("accountstats:account", kwargs={"account": "def-owner_gpu"})).status_code == 403


def test_member_sees_per_user_allocated_used_and_wasted(client, personas, prom, settings):
    settings.ACCOUNTSTATS_RULES_INTERVAL = 30
    s = personas.slurm
    # CPU from the jobs: 2 cores for 2 hours with TotalCPU 1 h, plus the personas' 30-minute one-core jobs
    job = s.job("owner", ACCOUNT, cpus_req=2, time_start=s.now - 3 * 3600, time_end=s.now - 3600)
    s.step(job, user_sec=3000, sys_sec=600)
    # GPUs from the rules: 240 samples of 1 GPU = 2 GPU-hours allocated; 12 GPU-samples used = 0.1
    prom.samples = {
        "gpu_allocated": [({"user": "owner"}, 240.0)],
        "gpu_used": [({"user": "owner"}, 12.0)],
    }
    client.force_login(personas.member)
    response = client.get(reverse("accountstats:account", kwargs={"account": ACCOUNT}))
    assert response.status_code == 200
    rows = {row.user: row for row in response.context["rows"]}
    assert [row.user for row in response.context["rows"]] == ["owner", "member"]
    assert rows["owner"].get("cpu_allocated") == pytest.approx(4.5)
    assert rows["owner"].get("cpu_used") == pytest.approx(1.0)  # TotalCPU, as sacct adds it up
    assert rows["owner"].cpu_wasted == pytest.approx(3.5)
    assert rows["member"].cpu_wasted == pytest.approx(0.5)  # nothing used: all of it wasted
    assert rows["owner"].gpu_wasted == pytest.approx(1.9)
    assert '"account"' not in prom.queries[-1]  # label values are quoted literals, not names
    assert 'account="def-owner"' in prom.queries[-1]
    jobs = response.context["page"].object_list
    assert {job.user for job in jobs} == {"owner", "member"}


def test_account_page_renders_with_a_notice_when_prometheus_is_down(client, personas, prom):
    prom.down = True
    client.force_login(personas.owner)
    response = client.get(reverse("accountstats:account", kwargs={"account": ACCOUNT}))
    assert response.status_code == 200
    assert response.context["metrics_notice"]
    assert len(response.context["page"].object_list) == 2  # the accounting database still answers


def test_graph_is_a_plotly_figure_with_utc_x_values(client, personas, prom):
    prom.series = [Series({"user": "owner"}, [1_700_000_000.0, 1_700_000_060.0], [2.0, 1.5])]
    client.force_login(personas.owner)
    url = reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "cpu_wasted"})
    body = client.get(url).json()
    assert body["data"][0]["x"] == ["2023-11-14T22:13:20Z", "2023-11-14T22:14:20Z"]
    assert body["data"][0]["name"] == "owner"
    assert "clamp_min" in prom.queries[-1]


def test_graph_answers_json_503_when_prometheus_is_down(client, personas, prom):
    prom.down = True
    client.force_login(personas.owner)
    response = client.get(reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "cpu_used"}))
    assert response.status_code == 503
    assert response.json()["source"] == "prometheus"


def test_graph_of_an_uncollected_metric_is_the_no_data_figure(client, personas, prom):
    client.force_login(personas.owner)
    body = client.get(reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "lustre_ost"})).json()
    assert body["no_data"] is True
    assert body["data"] == []
    assert prom.queries == []


def test_unknown_graph_and_bad_window_are_client_errors(client, personas):
    client.force_login(personas.owner)
    assert client.get(reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "nope"})).status_code == 404
    url = reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "cpu_used"})
    assert client.get(url + "?delta=abc").status_code == 400


def test_label_values_are_escaped():
    expr = services.per_user_expr("cpu_used", 'def-x"} or vector(1) #')
    assert 'account="def-x\\"} or vector(1) #"' in expr


@pytest.mark.parametrize("extra_jobs", [1, 3])
def test_account_page_query_count_is_flat(client, personas, prom, extra_jobs, django_assert_max_num_queries):
    for _ in range(extra_jobs):
        personas.slurm.job("member", ACCOUNT, gpus=1)
    client.force_login(personas.owner)
    # slurm: the jobs page (3), the period's finished jobs with their steps (5) and running jobs (3)
    with django_assert_max_num_queries(12), django_assert_max_num_queries(11, using="slurm"):
        response = client.get(reverse("accountstats:account", kwargs={"account": ACCOUNT}))
    assert len(response.context["page"].object_list) == 2 + extra_jobs


@pytest.mark.parametrize("accounts", [1, 3])
def test_index_query_count_is_flat(client, personas, accounts, django_assert_max_num_queries):
    """The index lists the user's accounts with this period's use: the queries do not grow per account."""
    names = [ACCOUNT] + [f"def-extra{i}" for i in range(accounts - 1)]
    for name in names[1:]:
        personas.slurm.account(name)
        personas.slurm.user("owner", [name])
        personas.slurm.job("owner", name)
    client.force_login(personas.owner)
    with django_assert_max_num_queries(6), django_assert_max_num_queries(6, using="slurm"):
        response = client.get(reverse("accountstats:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert all(name in html for name in names)


# --- the application, fair-share and Lustre graphs, with series shaped like a real site's -----------
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOURS = [T0 + 3600 * i for i in range(6)]


def graph(client, name, query=""):
    response = client.get(reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": name}) + query)
    assert response.status_code == 200, response.content
    return response.json()


def test_application_graph_stacks_the_twelve_largest_executables(client, personas, prom):
    # slurm_job:process_usage:sum_account per bin: cores used by each executable basename
    bins = {"python3.11": 31.5, "gmx_mpi": 12.0, "lmp": 6.25, "orca": 4.0, "R": 2.0, "julia": 1.5, "matlab": 1.2,
            "pw.x": 1.0, "vasp_std": 0.9, "namd2": 0.8, "cp2k.psmp": 0.7, "java": 0.6, "perl": 0.2, "bash": 0.1}  # fmt: skip
    prom.series = [Series({"bin": name}, HOURS, [cores] * len(HOURS)) for name, cores in bins.items()]
    client.force_login(personas.owner)
    body = graph(client, "application")
    names = [item["name"] for item in body["data"]]
    assert names == list(bins)[:12]  # largest first; perl and bash are left out
    assert all(item.get("stackgroup") for item in body["data"])
    assert body["data"][0]["y"] == [31.5] * 6
    assert body["data"][0]["x"][0] == "2026-01-01T00:00:00Z"
    assert prom.queries[-1] == 'sum by (bin) (slurm_job:process_usage:sum_account{account="def-owner"})'
    assert prom.spans[-1] == pytest.approx(30 * 86400, abs=600)  # ACCOUNTSTATS_DEFAULT_DAYS


def test_fair_share_graph_puts_levelfs_on_the_right_axis(client, personas, prom):
    # sshare's LevelFS falls below 1 while the account uses more than its share
    prom.ranges = {
        "allocated": [({}, HOURS, [64, 64, 128, 128, 128, 64])],
        "used": [({}, HOURS, [40.5, 60, 120, 118, 90, 10])],
        "levelfs": [({"account": ACCOUNT}, HOURS, [1.8, 1.4, 0.9, 0.7, 0.6, 0.65])],
    }
    client.force_login(personas.owner)
    body = graph(client, "cpu_priority")
    by_name = {item["name"]: item for item in body["data"]}
    assert by_name["Allocated"]["y"] == [64, 64, 128, 128, 128, 64]
    assert by_name["Used"]["y"][0] == 40.5
    levelfs = by_name["LevelFS (right axis)"]
    assert (levelfs["yaxis"], levelfs["y"][-1]) == ("y2", 0.65)
    share = by_name["LevelFS 1: used exactly its share"]
    assert (share["yaxis"], share["y"], share["x"]) == (
        "y2",
        [1.0, 1.0],
        ["2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z"],
    )
    assert body["layout"]["yaxis2"]["title"]["text"] == "LevelFS"
    query = prom.queries[-1]
    assert 'slurm_job:allocated_core:count_user_account{account="def-owner"}' in query
    assert 'slurm_account_levelfs{account="def-owner"}' in query
    assert prom.spans[-1] == pytest.approx(90 * 86400, abs=600)  # the priority graphs' 90 days
    graph(client, "gpu_priority")
    assert "slurm_job:allocated_gpu:count_user_account" in prom.queries[-1]


def test_fair_share_graph_without_levelfs_still_shows_the_use(client, personas, prom):
    # the exporter drops accounts with NormUsage 0: a missing series is not a zero
    prom.ranges = {"allocated": [({}, HOURS, [8] * 6)], "used": [({}, HOURS, [7.5] * 6)]}
    client.force_login(personas.owner)
    body = graph(client, "cpu_priority")
    assert [item["name"] for item in body["data"]] == ["Allocated", "Used"]


def test_lustre_graphs_per_user_and_filesystem(client, personas, prom, settings):
    settings.ACCOUNTSTATS_LUSTRE = True
    mib = 1024**2
    prom.series = [
        Series({"user": "owner", "fs": "lustre05"}, HOURS, [v * mib for v in (120, 80, 0, 0, 300, 10)]),
        Series({"user": "member", "fs": "scratch"}, HOURS, [2.5 * mib] * 6),
    ]
    client.force_login(personas.owner)
    body = graph(client, "lustre_ost")
    by_name = {item["name"]: item["y"] for item in body["data"]}
    assert by_name == {"owner (lustre05)": [120, 80, 0, 0, 300, 10], "member (scratch)": [2.5] * 6}  # MiB/s
    query = prom.queries[-1]
    # bandwidth is what the account's jobs read and wrote
    assert 'lustre:read_bytes:rate3m_user{account="def-owner"}' in query
    assert 'lustre:write_bytes:rate3m_user{account="def-owner"}' in query
    prom.series = [Series({"user": "owner", "fs": "lustre05"}, HOURS, [1500.0, 2000.0, 0, 0, 0, 12.5])]
    body = graph(client, "lustre_mdt")
    assert [(item["name"], item["y"][1]) for item in body["data"]] == [("owner (lustre05)", 2000.0)]
    assert 'lustre:metadata:rate3m_user{account="def-owner"}' in prom.queries[-1]
