"""nodes against the stack: scontrol's nodes, the accounting database's jobs (cross-checked with
sacct) and node_exporter's series under the {node}:9100 instance convention."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm"])]

MONTH = 30 * 86400


@pytest.fixture
def staff(stack_dir, settings):
    settings.SLURM_SCONTROL = "scontrol"
    return get_user_model().objects.create_user("staffer", is_staff=True)


def test_users_get_403(client, stack_dir):
    client.force_login(get_user_model().objects.create_user("alice"))
    assert client.get(reverse("nodes:index")).status_code == 403


def test_index_lists_the_stack_nodes_as_scontrol_sees_them(client, staff, slurm_cmd):
    out = slurm_cmd(["sinfo", "-N", "-h", "-o", "%N %c"]).stdout
    expected = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.strip()}
    client.force_login(staff)
    response = client.get(reverse("nodes:index"))
    assert response.status_code == 200
    assert response.context["problems"] == []
    nodes = {node.name: node for node, _line, _scratch in response.context["rows"]}
    assert {name: node.cpus_total for name, node in nodes.items()} == expected
    assert nodes["gpu01"].gpus_total == 4


def test_timeline_holds_the_jobs_sacct_lists_on_the_node(client, staff, slurm_cmd):
    out = slurm_cmd(
        ["sacct", "-a", "-X", "-n", "-P", "-N", "cpu01", "-S", "now-30days", "-E", "now", "-o", "JobID,User,AllocCPUS"]
    ).stdout
    expected = {line.split("|")[0] for line in out.splitlines() if line and int(line.split("|")[2] or 0) > 0}
    client.force_login(staff)
    figure = client.get(
        reverse("nodes:graph", kwargs={"node": "cpu01", "graph": "jobs_cpus"}) + f"?delta={MONTH}"
    ).json()
    shown = {label.rsplit(" (", 1)[0] for trace in figure["data"] for label in trace["y"]}
    assert shown == expected


def test_node_page_and_its_node_exporter_graphs(client, staff):
    client.force_login(staff)
    response = client.get(reverse("nodes:node", kwargs={"node": "gpu01"}) + f"?delta={MONTH}")
    assert response.status_code == 200
    assert response.context["state"].name == "gpu01"
    for name in ("cpu", "memory", "network", "disk", "gpu"):
        url = reverse("nodes:graph", kwargs={"node": "gpu01", "graph": name}) + f"?delta={MONTH}"
        figure = client.get(url).json()
        assert "Prometheus" not in figure.get("reason", ""), name
    memory = client.get(reverse("nodes:graph", kwargs={"node": "gpu01", "graph": "memory"}) + f"?delta={MONTH}").json()
    assert memory["data"], memory.get("reason")
