"""scheduler: staff analytics of waits, run times, time-outs and fair share by partition."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scheduler.analytics import size_class
from slurm.decoders import JobState
from userportal.prometheus import Series

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def jobs(personas, slurm):
    """Three jobs in `cpu` (waits 1 h, 2 h, 3 h; one time-out) and one in `gpu`, besides the personas' jobs."""
    now = slurm.now
    made = []
    for hours, state, cpus in ((1, JobState.COMPLETED, 1), (2, JobState.TIMEOUT, 4), (3, JobState.COMPLETED, 100)):
        start = now - 86400
        made.append(
            slurm.job(
                "owner", "def-owner", partition="cpu", cpus_req=cpus, state=state, time_eligible=start - hours * 3600,
                time_start=start, time_end=start + 1800, timelimit=60,
            )
        )  # fmt: skip
    made.append(slurm.job("outsider", "def-other", partition="gpu", gpus=1, time_eligible=now - 7200))
    return made


def test_users_are_refused(client, personas):
    client.force_login(personas.owner)
    for url in (reverse("scheduler:index"), reverse("scheduler:csv"), reverse("scheduler:graph", args=["wait"])):
        assert client.get(url).status_code == 403


def test_size_classes():
    assert [size_class(n) for n in (1, 2, 8, 9, 64, 65, 512, 513)] == [
        "1", "2–8", "2–8", "9–64", "9–64", "65–512", "65–512", "> 512",
    ]  # fmt: skip


def test_partition_statistics(client, personas, jobs, prom):
    client.force_login(personas.staff)
    response = client.get(reverse("scheduler:index") + "?account=def-owner")
    assert response.status_code == 200
    (cpu,) = response.context["stats"]  # the account's jobs only: no gpu partition
    assert cpu.partition == "cpu"
    assert cpu.jobs == 5  # three here, the owner's and the member's persona jobs (def-owner, partition cpu)
    assert cpu.timeouts == 1
    assert cpu.timeout_ratio == pytest.approx(1 / 5)
    assert cpu.ratio_median == pytest.approx(0.5)  # 30 minutes of 60
    assert cpu.size_medians_h()["2–8"] == pytest.approx(2.0)
    assert cpu.size_medians_h()["65–512"] == pytest.approx(3.0)
    assert response.context["levelfs_missing"]
    everything = client.get(reverse("scheduler:index")).context["stats"]
    assert [entry.partition for entry in everything] == ["cpu", "gpu"]


def test_levelfs_at_start_from_the_exporter(client, personas, jobs, prom, slurm):
    start = slurm.now - 86400
    prom.series = [Series({"account": "def-owner"}, [start - 600.0, start + 300.0, start + 7200.0], [9.0, 0.5, 3.0])]
    client.force_login(personas.staff)
    (cpu,) = client.get(reverse("scheduler:index") + "?account=def-owner").context["stats"]
    assert cpu.levelfs == [0.5, 0.5, 0.5]  # the first sample within 15 minutes after each start
    assert "slurm_account_levelfs" in prom.queries[-1]


def test_prometheus_down_keeps_the_tables_and_says_so(client, personas, jobs, prom):
    prom.down = True
    client.force_login(personas.staff)
    response = client.get(reverse("scheduler:index"))
    assert response.status_code == 200
    assert response.context["stats"]
    assert "Prometheus" in response.content.decode()


def test_csv_is_neutralised(client, personas, jobs, slurm):
    slurm.job("owner", "def-owner", partition="=cmd")
    client.force_login(personas.staff)
    response = client.get(reverse("scheduler:csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("partition,jobs started,median wait (h)")
    assert any(line.startswith("'=cmd,") for line in lines)


def test_graphs(client, personas, jobs, prom):
    client.force_login(personas.staff)
    wait = client.get(reverse("scheduler:graph", args=["wait"])).json()
    assert {trace["name"] for trace in wait["data"]} >= {"1 cores", "65–512 cores"}
    timeouts = client.get(reverse("scheduler:graph", args=["timeouts"])).json()
    assert timeouts["data"][0]["x"] == ["cpu", "gpu"]
    assert client.get(reverse("scheduler:graph", args=["levelfs"])).json()["no_data"]
    assert client.get(reverse("scheduler:graph", args=["nope"])).status_code == 404


def test_bad_parameters_are_400(client, personas):
    client.force_login(personas.staff)
    assert client.get(reverse("scheduler:index") + "?account=a%20b").status_code == 400
    assert client.get(reverse("scheduler:index") + "?delta=5").status_code == 400
    assert client.get(reverse("scheduler:graph", args=["wait"]) + "?delta=x").status_code == 400


def test_window_is_computed_per_request(client, personas, monkeypatch):
    client.force_login(personas.staff)
    monkeypatch.setattr("time.time", lambda: 2_000_000_000.0)
    first = client.get(reverse("scheduler:index")).context["window"]
    monkeypatch.setattr("time.time", lambda: 2_000_086_400.0)
    second = client.get(reverse("scheduler:index")).context["window"]
    assert second.end - first.end == 86400
    assert first.seconds == 30 * 86400


def test_levelfs_at_start_takes_the_step_from_the_query_not_from_a_gap():
    """Prometheus leaves out steps without samples: a gap is not the step, and the value 9 steps
    after a job's start does not stand for its start."""
    from scheduler.analytics import JobRow, LevelFS, by_partition

    step, t0 = 3600, 1_800_000_000
    series = Series({"account": "a"}, [float(t0), t0 + 10.0 * step, t0 + 11.0 * step], [0.2, 0.9, 0.8])
    levelfs = LevelFS({"a": series}, step)
    late = JobRow("cpu", "a", 1, t0 + step, t0 + step, 0, 60, 0)  # started in the gap
    on_time = JobRow("cpu", "a", 1, t0 + 10 * step - 60, t0 + 10 * step - 60, 0, 60, 0)  # a minute before a point
    assert by_partition([late], levelfs)[0].levelfs_mean is None
    assert by_partition([on_time], levelfs)[0].levelfs_mean == 0.9
