"""accountstats against the stack: its accounts, jobs (cross-checked with sacct) and Prometheus rules."""

from __future__ import annotations

import time

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from userportal.prometheus import get_client

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm"])]


@pytest.fixture
def alice(stack_dir):
    return get_user_model().objects.create_user("alice")


def test_index_lists_alices_accounts(client, alice):
    client.force_login(alice)
    accounts = [use.account for use in client.get(reverse("accountstats:index")).context["accounts"]]
    assert accounts == ["physics"]


def test_account_jobs_are_sacct_s_jobs_of_the_account(client, alice, slurm_cmd):
    out = slurm_cmd(["sacct", "-a", "-X", "-n", "-P", "-A", "physics", "-S", "2020-01-01", "-o", "JobID,User"]).stdout
    expected = {tuple(line.split("|")) for line in out.splitlines() if line}
    client.force_login(alice)
    response = client.get(reverse("accountstats:account", kwargs={"account": "physics"}) + "?page=1")
    assert response.status_code == 200
    page = response.context["page"]
    rows = {(j.job_id, j.user) for j in page.object_list}
    assert page.paginator.count == len(expected)
    assert rows <= expected


def test_per_user_table_cpu_is_saccts_and_gpus_are_the_rules(client, alice, slurm_cmd):
    client.force_login(alice)
    response = client.get(reverse("accountstats:account", kwargs={"account": "physics"}) + f"?delta={90 * 86400}")
    rows = {row.user: row for row in response.context["rows"]}
    # core-hours allocated: sacct's AllocCPUS × ElapsedRaw of the account's jobs (all ended in the period)
    out = slurm_cmd(
        ["sacct", "-a", "-X", "-n", "-P", "-A", "physics", "-S", "now-90days", "-E", "now", "-s", "CD,F,CA,TO,OOM,NF,PR,DL",
         "--format=User,AllocCPUS,ElapsedRaw"]
    ).stdout  # fmt: skip
    core_hours: dict[str, float] = {}
    for line in out.splitlines():
        user, cpus, elapsed = line.split("|")
        core_hours[user] = core_hours.get(user, 0.0) + int(cpus) * int(elapsed or 0) / 3600
    for user, value in core_hours.items():
        if value:
            assert rows[user].get("cpu_allocated") == pytest.approx(value, rel=0.02, abs=1e-4)
    query = 'sum by (user) (sum_over_time(slurm_job:allocated_gpu:count_user_account{account="physics"}[7776000s]))'
    answer = requests.get(f"{settings.PROMETHEUS_URL}/api/v1/query", params={"query": query}, timeout=10).json()
    for r in answer["data"]["result"]:
        value = float(r["value"][1]) * settings.ACCOUNTSTATS_RULES_INTERVAL / 3600
        assert rows[r["metric"]["user"]].get("gpu_allocated") == pytest.approx(value, rel=0.02)
    assert rows["alice"].cpu_wasted == pytest.approx(
        max(rows["alice"].get("cpu_allocated") - rows["alice"].get("cpu_used"), 0)
    )


def test_graph_has_data_for_physics(client, alice):
    client.force_login(alice)
    body = client.get(
        reverse("accountstats:graph", kwargs={"account": "physics", "name": "cpu_allocated"}) + f"?delta={90 * 86400}"
    ).json()
    assert {trace["name"] for trace in body["data"]} >= {"alice"}
    assert body["data"][0]["x"][0].endswith("Z")
    assert len(body["data"][0]["x"]) <= 1000


def test_carol_is_refused_physics(client, stack_dir):
    carol = get_user_model().objects.create_user("carol")
    client.force_login(carol)
    assert client.get(reverse("accountstats:account", kwargs={"account": "physics"})).status_code == 403


def test_page_renders_a_notice_with_prometheus_down(client, alice, settings):
    settings.PROMETHEUS_URL = "http://127.0.0.1:9"
    get_client.cache_clear()
    try:
        client.force_login(alice)
        response = client.get(reverse("accountstats:account", kwargs={"account": "physics"}))
        assert response.status_code == 200
        assert response.context["metrics_notice"]
    finally:
        get_client.cache_clear()


def prometheus_range(query: str, days: int = 90) -> list[float]:
    """Every value Prometheus has for `query` over the last `days` (hourly), to bound the graph's."""
    end = time.time()
    answer = requests.get(
        f"{settings.PROMETHEUS_URL}/api/v1/query_range",
        params={"query": query, "start": end - days * 86400, "end": end, "step": 3600},
        timeout=10,
    ).json()
    return [float(v) for item in answer["data"]["result"] for _t, v in item["values"]]


def prometheus_instant(query: str) -> float | None:
    answer = requests.get(f"{settings.PROMETHEUS_URL}/api/v1/query", params={"query": query}, timeout=10).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_application_graph_shows_the_executables_physics_ran(client, alice):
    """The stack's slurm-job-exporter reports /opt/software/bin/simulate for physics' jobs."""
    client.force_login(alice)
    body = client.get(
        reverse("accountstats:graph", kwargs={"account": "physics", "name": "application"}) + f"?delta={90 * 86400}"
    ).json()
    traces = {trace["name"]: trace for trace in body["data"]}
    assert "simulate" in traces, body
    direct = prometheus_range('sum by (bin) (slurm_job:process_usage:sum_account{account="physics", bin="simulate"})')
    shown = [v for v in traces["simulate"]["y"] if v is not None]
    assert shown and direct
    assert min(direct) - 0.01 <= min(shown) and max(shown) <= max(direct) + 0.01


def test_fair_share_graph_has_physics_levelfs_from_the_slurm_exporter(client, alice):
    client.force_login(alice)
    body = client.get(reverse("accountstats:graph", kwargs={"account": "physics", "name": "cpu_priority"})).json()
    traces = {trace["name"]: trace for trace in body["data"]}
    assert {"Allocated", "Used", "LevelFS (right axis)", "LevelFS 1: used exactly its share"} <= set(traces), body
    levelfs = [v for v in traces["LevelFS (right axis)"]["y"] if v is not None]
    # bounded by every raw sample of the series (not by an hourly sampling of it: the graph's steps
    # fall elsewhere, and the stack's slurm-exporter series span about an hour)
    lowest = prometheus_instant('min(min_over_time(slurm_account_levelfs{account="physics"}[91d]))')
    highest = prometheus_instant('max(max_over_time(slurm_account_levelfs{account="physics"}[91d]))')
    assert levelfs and lowest is not None and highest is not None
    assert lowest - 0.001 <= min(levelfs) and max(levelfs) <= highest + 0.001
    assert traces["LevelFS (right axis)"]["yaxis"] == "y2"
    assert max(v for v in traces["Allocated"]["y"] if v is not None) > 0
