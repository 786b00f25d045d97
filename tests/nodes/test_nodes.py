"""nodes: the staff node list (scontrol + node_exporter), a node's page (events, jobs, graphs)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from nodes import state
from nodes.accounting import jobs_on, node_state_name
from nodes.state import parse_nodes
from slurm.commands import CommandResult, SlurmCommandError
from slurm.decoders import JobState
from slurm.router import allow_writes
from userportal.prometheus import Series
from userportal.windows import Window

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

SCONTROL = (
    "NodeName=node01 Arch=x86_64 CoresPerSocket=4  CPUAlloc=6 CPUEfctv=8 CPUTot=8 CPULoad=5.50 "
    "Gres=(null) NodeAddr=127.0.0.1 OS=Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC  RealMemory=128000 AllocMem=64000 "
    "FreeMem=13867 State=MIXED Partitions=cpu,largemem CfgTRES=cpu=8,mem=125G,billing=8 AllocTRES=cpu=6,mem=62.50G\n"
    "NodeName=gpu01 CPUAlloc=0 CPUTot=16 CPULoad=N/A RealMemory=64000 AllocMem=0 State=DOWN+DRAIN+NOT_RESPONDING "
    "Partitions=gpu CfgTRES=cpu=16,mem=62.50G,gres/gpu=4,gres/gpu:a100=4 AllocTRES= "
    "Reason=Not responding [slurm@2026-12-07T11:00:00]\n"
)


@pytest.fixture
def scontrol(monkeypatch, settings):
    """scontrol answering SCONTROL (or failing when ``calls.fail`` is set); the argv of each call is kept."""
    settings.SLURM_SCONTROL = "scontrol"

    class Calls(list):
        fail = False
        output = SCONTROL

    calls = Calls()

    def run(argv, *, timeout, **kwargs):
        calls.append(list(argv))
        if calls.fail:
            raise SlurmCommandError("scontrol: down", argv=argv, returncode=1)
        wanted = argv[4:]
        lines = [line for line in calls.output.splitlines() if not wanted or line.startswith(f"NodeName={wanted[0]} ")]
        return CommandResult(tuple(argv), 0, "\n".join(lines), "")

    monkeypatch.setattr(state, "run_command", run)
    return calls


def test_scontrol_lines_parse_with_values_holding_spaces():
    node01, gpu01 = sorted(parse_nodes(SCONTROL), key=lambda n: n.name, reverse=True)
    assert (node01.name, node01.state, node01.cpus_alloc, node01.cpus_total) == ("node01", "MIXED", 6, 8)
    assert (node01.mem_alloc_mb, node01.mem_total_mb, node01.gpus_total, node01.load) == (64000, 128000, 0, 5.5)
    assert node01.partitions == "cpu,largemem"
    assert not node01.unavailable
    assert gpu01.reason == "Not responding [slurm@2026-12-07T11:00:00]"
    assert (gpu01.gpus_alloc, gpu01.gpus_total, gpu01.load) == (0, 4, None)
    assert gpu01.unavailable


def test_users_are_refused_every_nodes_page(client, personas):
    client.force_login(personas.owner)
    for url in (
        reverse("nodes:index"),
        reverse("nodes:node", kwargs={"node": "node01"}),
        reverse("nodes:graph", kwargs={"node": "node01", "graph": "cpu"}),
    ):
        assert client.get(url).status_code == 403


def test_index_lists_nodes_with_use_scratch_and_sparkline(client, personas, scontrol, prom):
    prom.samples = {
        "used": [({"instance": "node01:9100"}, 100e9)],
        "size": [({"instance": "node01:9100"}, 400e9)],
    }
    prom.series = [Series({"instance": "node01:9100"}, [1000.0, 2000.0], [0.5, 1.0])]
    client.force_login(personas.staff)
    response = client.get(reverse("nodes:index"))
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [node.name for node, _line, _scratch in rows] == ["gpu01", "node01"]
    _node, line, scratch = rows[1]
    assert scratch == pytest.approx((100.0, 400.0))
    assert line.count(",") == 2
    assert scontrol == [["scontrol", "show", "node", "--oneliner"]]
    assert b"Not responding [slurm@" in response.content
    assert 'mode="idle"' in prom.queries[0]
    assert 'mountpoint="/localscratch"' in prom.queries[1]


def test_index_sorts_and_pages(client, personas, scontrol, prom, settings):
    settings.NODES_PAGE_SIZE = 1
    client.force_login(personas.staff)
    response = client.get(reverse("nodes:index") + "?sort=-cpu")
    assert [node.name for node, _l, _s in response.context["rows"]] == ["node01"]
    response = client.get(reverse("nodes:index") + "?sort=-cpu&page=2")
    assert [node.name for node, _l, _s in response.context["rows"]] == ["gpu01"]
    response = client.get(reverse("nodes:index") + "?sort=bogus")
    assert [node.name for node, _l, _s in response.context["rows"]] == ["gpu01"]


def test_index_says_which_source_is_down(client, personas, scontrol, prom):
    prom.down = True
    client.force_login(personas.staff)
    response = client.get(reverse("nodes:index"))
    assert response.status_code == 200
    assert "Prometheus" in response.content.decode()
    scontrol.fail = True
    response = client.get(reverse("nodes:index"))
    assert response.status_code == 200
    assert "scontrol" in response.content.decode()


def test_unit_tests_have_no_scontrol_and_the_page_says_so(client, personas):
    client.force_login(personas.staff)
    response = client.get(reverse("nodes:index"))
    assert response.status_code == 200
    assert "scontrol" in response.content.decode()


def test_node_page_shows_state_events_and_graphs(client, personas, scontrol, slurm):
    with allow_writes():
        slurm.models.event.objects.using(slurm.using).create(
            node_name="node01", time_start=slurm.now - 3600, time_end=0, reason="bad DIMM", state=0x201
        )
        slurm.models.event.objects.using(slurm.using).create(
            node_name="node01", time_start=slurm.now - 30 * 86400, time_end=slurm.now - 29 * 86400, reason="old"
        )
    client.force_login(personas.staff)
    response = client.get(reverse("nodes:node", kwargs={"node": "node01"}))
    assert response.status_code == 200
    assert response.context["state"].name == "node01"
    assert [(event.reason, name) for event, name in response.context["events"]] == [("bad DIMM", "DOWN+DRAIN")]
    names = [graph["name"] for graph in response.context["graphs"]]
    assert names == ["jobs_cpus", "jobs_gpus", "cpu", "memory", "network", "disk", "gpu"]
    assert scontrol[-1] == ["scontrol", "show", "node", "--oneliner", "node01"]


def test_node_window_is_computed_per_request(client, personas, scontrol, monkeypatch):
    client.force_login(personas.staff)
    monkeypatch.setattr("time.time", lambda: 2_000_000_000.0)
    first = client.get(reverse("nodes:node", kwargs={"node": "node01"})).context["window"]
    monkeypatch.setattr("time.time", lambda: 2_000_003_600.0)
    second = client.get(reverse("nodes:node", kwargs={"node": "node01"})).context["window"]
    assert second.end - first.end == 3600
    assert first.seconds == 2 * 86400


def test_bad_node_names_and_windows(client, personas):
    client.force_login(personas.staff)
    assert client.get("/secure/nodes/a%20b/").status_code == 404
    assert client.get(reverse("nodes:graph", kwargs={"node": "node01", "graph": "nope"})).status_code == 404
    assert client.get(reverse("nodes:node", kwargs={"node": "node01"}) + "?delta=x").status_code == 400
    assert client.get(reverse("nodes:graph", kwargs={"node": "node01", "graph": "cpu"}) + "?delta=1").status_code == 400


def test_timeline_shows_the_jobs_on_the_node_by_user(client, personas, slurm):
    slurm.job("owner", "def-owner", cpus_req=4, nodes_alloc=2, state=JobState.RUNNING)
    slurm.job("member", "def-owner", gpus=2, nodelist="node[02-03]")
    slurm.job("outsider", "def-other", time_start=slurm.now - 10 * 86400, time_end=slurm.now - 9 * 86400)
    client.force_login(personas.staff)
    url = reverse("nodes:graph", kwargs={"node": "node01", "graph": "jobs_cpus"})
    figure = client.get(url).json()
    users = sorted(trace["name"] for trace in figure["data"])
    assert users == ["member", "outsider", "owner"]  # the personas' jobs ran on node01 too
    outsider = next(trace for trace in figure["data"] if trace["name"] == "outsider")
    assert len(outsider["y"]) == 1  # not the job of 10 days ago: the default window is 2 days
    owner = next(trace for trace in figure["data"] if trace["name"] == "owner")
    assert any(label.endswith("(2)") for label in owner["y"])  # 4 CPUs over 2 nodes
    gpus = client.get(reverse("nodes:graph", kwargs={"node": "node01", "graph": "jobs_gpus"})).json()
    assert gpus["no_data"]  # the GPU job ran on node02 and node03


def test_jobs_on_matches_hostlists_not_prefixes(personas, slurm):
    slurm.job("owner", "def-owner", nodelist="node[010-012]")
    window = Window.of(slurm.now - 86400, slurm.now)
    assert {job.user for job in jobs_on(slurm.cluster, "node011", window)} == {"owner"}
    assert all(job.user != "owner" or job.cpus for job in jobs_on(slurm.cluster, "node01", window))
    assert len(jobs_on(slurm.cluster, "node01", window)) == 3  # the personas' jobs, not node010's


def test_metric_graphs_use_node_exporter_series_and_say_when_prometheus_is_down(client, personas, prom):
    prom.series = [Series({"instance": "node01:9100", "portal_series": "used"}, [1000.0, 1060.0], [2.0, 3.0])]
    client.force_login(personas.staff)
    figure = client.get(reverse("nodes:graph", kwargs={"node": "node01", "graph": "cpu"})).json()
    assert figure["data"][0]["y"] == [2.0, 3.0]
    assert 'node_cpu_seconds_total{instance="node01:9100",mode="idle"}' in prom.queries[-1]
    for name, metric in (
        ("memory", "node_memory_MemAvailable_bytes"),
        ("network", "node_network_receive_bytes_total"),
        ("disk", "node_disk_read_bytes_total"),
        ("gpu", "slurm_job_utilization_gpu"),
    ):
        client.get(reverse("nodes:graph", kwargs={"node": "node01", "graph": name}))
        assert metric in prom.queries[-1]
    prom.down = True
    figure = client.get(reverse("nodes:graph", kwargs={"node": "node01", "graph": "memory"})).json()
    assert figure["no_data"]
    assert "Prometheus" in figure["reason"]


def test_event_states_are_named_as_scontrol_names_them():
    assert node_state_name(1) == "DOWN"
    assert node_state_name(0x201) == "DOWN+DRAIN"
    assert node_state_name(0x802) == "IDLE+NOT_RESPONDING"
    assert node_state_name(15) == "UNKNOWN"
