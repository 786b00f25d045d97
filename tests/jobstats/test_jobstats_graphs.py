"""Graph and cost JSON against a fake Prometheus on loopback (tests/jobstats/fake_prometheus.py)."""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from jobstats.graphs.job import JOB_GRAPHS
from jobstats.graphs.user import USER_GRAPHS
from userportal.windows import MAX_POINTS

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def job_graph_url(job_id, name, username="owner"):
    return reverse("jobstats:job_graph", kwargs={"username": username, "job_id": job_id, "name": name})


def user_graph_url(name, username="owner"):
    return reverse("jobstats:user_graph", kwargs={"username": username, "name": name})


def cost_url(job_id, username="owner"):
    return reverse("jobstats:job_cost", kwargs={"username": username, "job_id": job_id})


def fetch(client, url, status=200, **params):
    response = client.get(url, params)
    assert response.status_code == status, response.content[:400]
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)


def ranges(prometheus):
    return [seen for seen in prometheus.seen if seen["path"] == "/api/v1/query_range"]


def covers(query, seconds):
    """The range query covers ``seconds`` up to now: its grid, laid back from now, starts less than a step earlier."""
    span, step = float(query["end"]) - float(query["start"]), int(query["step"].rstrip("s"))
    return seconds <= span < seconds + step and span % step == 0 and time.time() - float(query["end"]) < 5


@pytest.fixture
def owner(client, personas):
    client.force_login(personas.owner)
    return client


@pytest.fixture
def all_sources(settings):
    settings.JOBSTATS_METRICS = ["job", "node", "lustre", "power"]


@pytest.mark.parametrize("name", sorted(JOB_GRAPHS))
def test_every_job_graph_is_a_plotly_figure_in_utc(owner, jobs, prometheus, all_sources, name):
    body = fetch(owner, job_graph_url(jobs.gpu.id_job, name))
    assert set(body) >= {"data", "layout", "summary"}
    assert body["data"], body.get("reason")
    for trace in body["data"]:
        assert trace["type"] == "scatter"
        assert len(trace["x"]) <= MAX_POINTS
        assert all(x.endswith("Z") for x in trace["x"])
    assert body["layout"]["xaxis"]["type"] == "date"
    query = ranges(prometheus)[-1]
    assert float(query["start"]) >= jobs.gpu.time_start - 1
    assert float(query["end"]) <= jobs.gpu.time_end + 60
    assert body["summary"]


def test_job_graph_queries_escape_and_name_the_job(owner, jobs, prometheus):
    fetch(owner, job_graph_url(jobs.gpu.id_job, "cpu"))
    query = ranges(prometheus)[-1]["query"]
    assert f'slurm_job_core_usage_total{{slurmjobid="{jobs.gpu.id_job}"}}' in query


def test_a_list_of_jobs_gets_one_series_per_job(owner, jobs, prometheus):
    body = fetch(owner, job_graph_url(f"{jobs.dep.id_job},{jobs.gpu.id_job}", "mem"))
    names = {trace["name"] for trace in body["data"]}
    assert any(name.startswith(f"{jobs.dep.id_job} · ") for name in names)
    assert any(name.startswith(f"{jobs.gpu.id_job} · ") for name in names)
    query = ranges(prometheus)[-1]
    assert f'slurmjobid=~"{jobs.dep.id_job}|{jobs.gpu.id_job}"' in query["query"]
    assert float(query["start"]) == min(jobs.dep.time_start, jobs.gpu.time_start)


def test_start_and_end_only_narrow_the_window(owner, jobs, prometheus):
    start, end = jobs.gpu.time_start + 600, jobs.gpu.time_start + 1200
    fetch(owner, job_graph_url(jobs.gpu.id_job, "cpu"), start=start, end=end)
    query = ranges(prometheus)[-1]
    assert float(query["start"]) == start
    assert float(query["end"]) == end
    assert int(query["step"].rstrip("s")) <= 30
    fetch(owner, job_graph_url(jobs.gpu.id_job, "cpu"), start=0, end=4_000_000_000)
    widest = ranges(prometheus)[-1]
    assert float(widest["start"]) == jobs.gpu.time_start
    assert float(widest["end"]) == jobs.gpu.time_end


@pytest.mark.parametrize("params", [{"start": "yesterday"}, {"start": "1", "end": "2"}, {"end": "-5"}])
def test_bad_windows_are_a_400(owner, jobs, prometheus, params):
    body = fetch(owner, job_graph_url(jobs.gpu.id_job, "cpu"), 400, **params)
    assert body["status"] == 400


def test_an_unknown_graph_is_a_json_404(owner, jobs, prometheus):
    body = fetch(owner, job_graph_url(jobs.gpu.id_job, "ipc"), 404)
    assert "cpu" in body["graphs"]
    fetch(owner, user_graph_url("nosuch"), 404)
    fetch(owner, job_graph_url("987654", "cpu"), 404)
    fetch(owner, job_graph_url("9-1", "cpu"), 400)


def test_a_job_that_never_started_has_no_data_without_asking(owner, jobs, prometheus):
    body = fetch(owner, job_graph_url(jobs.pending.id_job, "cpu"))
    assert body["no_data"] is True
    assert body["data"] == []
    assert prometheus.seen == []


def test_metrics_the_site_does_not_collect_are_no_data(owner, jobs, prometheus):
    body = fetch(owner, job_graph_url(jobs.gpu.id_job, "lustre_ost"))
    assert body["no_data"] is True
    assert prometheus.seen == []


def test_empty_answers_use_the_no_data_contract(owner, jobs, prometheus):
    prometheus.mode = "empty"
    for name in ("cpu", "gpu_utilization", "gpu_power", "thread"):
        body = fetch(owner, job_graph_url(jobs.gpu.id_job, name))
        assert body["data"] == []
        assert body["no_data"] is True
        assert body["reason"]
    assert fetch(owner, user_graph_url("gpu_power"))["no_data"] is True


def test_prometheus_down_is_a_json_503(owner, jobs, prometheus):
    prometheus.mode = "down"
    body = fetch(owner, job_graph_url(jobs.gpu.id_job, "cpu"), 503)
    assert body["source"] == "prometheus"
    assert body["detail"]
    body = fetch(owner, user_graph_url("cpu"), 503)
    assert body["code"] == "data_source_unavailable"


def test_nobody_listening_is_a_json_503(owner, jobs):
    body = fetch(owner, job_graph_url(jobs.gpu.id_job, "cpu"), 503)
    assert body["source"] == "prometheus"


def test_a_bad_answer_is_a_json_502(owner, jobs, prometheus):
    prometheus.mode = "garbage"
    fetch(owner, job_graph_url(jobs.gpu.id_job, "mem"), 502)


@pytest.mark.parametrize("name", sorted(USER_GRAPHS))
def test_user_graphs(owner, jobs, prometheus, all_sources, name):
    body = fetch(owner, user_graph_url(name), delta=30 * 86400)
    assert body["data"]
    assert all(len(trace["x"]) <= MAX_POINTS for trace in body["data"])
    query = ranges(prometheus)[-1]
    assert '{user="owner"' in query["query"] or 'user="owner"' in query["query"]
    assert covers(query, 30 * 86400)


def test_user_graph_windows(owner, jobs, prometheus):
    fetch(owner, user_graph_url("cpu"))
    default = ranges(prometheus)[-1]
    assert covers(default, 7 * 86400)
    fetch(owner, user_graph_url("cpu"), start=1795000000, end=1795003600)
    assert float(ranges(prometheus)[-1]["start"]) == 1795000000
    for params in ({"delta": "10"}, {"delta": str(400 * 86400)}, {"delta": "x"}, {"start": "5", "end": "1"}):
        fetch(owner, user_graph_url("cpu"), 400, **params)


def test_usernames_are_escaped_in_promql(client, personas, prometheus):
    client.force_login(personas.staff)
    fetch(client, user_graph_url("cpu", username='x"}or{a="'))
    query = ranges(prometheus)[-1]["query"]
    assert 'user="x\\"}or{a=\\""' in query


def test_recording_rules_are_used_when_configured(owner, jobs, prometheus, settings):
    settings.JOBSTATS_RECORDING_RULES = True
    fetch(owner, user_graph_url("cpu"))
    assert "slurm_job:used_core:sum_user_account" in ranges(prometheus)[-1]["query"]


def test_the_gpu_power_graph_uses_the_model_table(owner, jobs, prometheus):
    body = fetch(owner, job_graph_url(jobs.gpu.id_job, "gpu_power"))
    assert body["layout"]["yaxis"]["range"] == [0, 440.0]  # 1.1 × an A100's 400 W
    idle = next(trace for trace in body["data"] if trace["name"].startswith("Idle"))
    assert idle["y"] == [55.0, 55.0]
    assert next(trace for trace in body["data"] if trace["name"] == "GPU 0")["y"][0] == pytest.approx(245.0)


# --- cost.json ------------------------------------------------------------------------------
def test_cost_of_a_job_without_power_metrics_uses_rated_power(owner, jobs):
    body = fetch(owner, cost_url(jobs.gpu.id_job))
    hours = (jobs.gpu.time_end - jobs.gpu.time_start) / 3600
    assert body["energy_source"] == "rated"
    assert body["kwh"] == pytest.approx((4 * 8 + 400) / 1000 * hours, rel=1e-4)
    assert body["hardware_cost_dollar"] == pytest.approx(0.31393 * hours, rel=1e-4)
    assert body["cloud_cost_dollar"] == pytest.approx(1.7725 * hours, rel=1e-4)
    assert {
        "electricity_cost_dollar",
        "cooling_cost_dollar",
        "co2_emissions_kg",
        "electric_car_range_km",
        "amortization_years",
    } <= set(body)


def test_cost_uses_measured_gpu_power(owner, jobs, prometheus):
    body = fetch(owner, cost_url(jobs.gpu.id_job))
    assert body["energy_source"] == "gpu-measured"
    hours = (jobs.gpu.time_end - jobs.gpu.time_start) / 3600
    assert body["kwh"] == pytest.approx((245 + 4 * 8) / 1000 * hours, rel=1e-3)


def test_cost_uses_node_power_when_collected(owner, jobs, prometheus, all_sources):
    body = fetch(owner, cost_url(jobs.gpu.id_job))
    assert body["energy_source"] == "measured"


def test_cost_keys_follow_the_settings(owner, jobs, settings):
    settings.JOBSTATS_ELECTRICITY_COST_PER_KWH = None
    settings.JOBSTATS_CLOUD_COST_PER_GPU_HOUR = None
    body = fetch(owner, cost_url(jobs.gpu.id_job))
    assert "electricity_cost_dollar" not in body
    assert "cloud_cost_dollar" not in body
    assert "total_cost_dollar" not in body
    assert "cooling_cost_dollar" in body


def test_cost_of_a_job_that_never_started_is_empty(owner, jobs):
    assert fetch(owner, cost_url(jobs.pending.id_job)) == {}


def test_cost_errors(owner, jobs):
    fetch(owner, cost_url("987654"), 404)
    fetch(owner, cost_url(f"{jobs.dep.id_job},{jobs.gpu.id_job}"), 400)


def test_cost_with_prometheus_down_falls_back_to_an_estimate(owner, jobs, prometheus):
    prometheus.mode = "down"
    assert fetch(owner, cost_url(jobs.gpu.id_job))["energy_source"] == "rated"


def test_a_dead_prometheus_is_not_asked_again_at_once(owner, jobs, prometheus):
    prometheus.mode = "down"
    fetch(owner, job_graph_url(jobs.gpu.id_job, "cpu"), 503)
    asked = len(prometheus.seen)
    prometheus.mode = "ok"
    fetch(owner, job_graph_url(jobs.gpu.id_job, "cpu"), 503)  # remembered for a short while
    assert len(prometheus.seen) == asked
