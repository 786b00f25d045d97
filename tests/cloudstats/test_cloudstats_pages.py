"""cloudstats pages and graph JSON: who sees what, the instance-in-project check, outages."""

from __future__ import annotations

import pytest
from cloudstats_fixtures import DB, IDLE, WEB
from django.urls import reverse

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def project_url(name: str, project: str = "def-owner", **kwargs: str) -> str:
    return reverse(f"cloudstats:{name}", kwargs={"project": project, **kwargs})


def test_a_member_sees_their_projects_instances_and_graphs(client, personas, cloud):
    client.force_login(personas.member)
    index = client.get(reverse("cloudstats:index"))
    assert index.status_code == 200
    assert [row.name for row in index.context["projects"]] == ["def-owner"]
    assert index.context["all_projects"] == []  # not staff
    page = client.get(project_url("project"))
    assert page.status_code == 200
    rows = page.context["instances"]
    assert [(i.name, i.flavor, i.vcpus, i.running) for i in rows] == [
        ("idle-1", "c1-96m", 1.0, True),
        ("web-1", "c2-128m", 2.0, True),
    ]
    web = rows[1]
    assert web.memory_gib == pytest.approx(0.125)
    assert web.cpu_percent == pytest.approx(5.0)
    html = page.content.decode()
    assert WEB["uuid"] in html and IDLE["uuid"] in html
    # the graphs the Debian exporter can draw, and what it does not report
    assert [g["spec"].name for g in page.context["graphs"]] == [
        "cpu",
        "memory",
        "disk_bandwidth",
        "disk_iops",
        "network_bandwidth",
    ]
    assert "the memory in use inside the instances" in html
    # the project filter is an escaped label match
    assert any('project_name="def-owner"' in q for q in cloud.queries)


def test_another_user_is_refused_the_project_and_its_graphs(client, personas, cloud):
    client.force_login(personas.outsider)
    assert client.get(project_url("project")).status_code == 403
    assert client.get(project_url("project_graph", metric="cpu")).status_code == 403
    assert client.get(project_url("instance", uuid=WEB["uuid"])).status_code == 403
    assert client.get(project_url("project_usage")).status_code == 403
    assert cloud.queries == []  # refused before any query
    index = client.get(reverse("cloudstats:index"))
    assert index.context["projects"] == []
    assert "You are not a member of any cloud project." in index.content.decode()


def test_users_are_refused_the_staff_pages(client, personas, cloud):
    client.force_login(personas.owner)
    for name in ("staff_usage", "idle"):
        assert client.get(reverse(f"cloudstats:{name}")).status_code == 403
    assert client.get(reverse("cloudstats:staff_graph", kwargs={"metric": "cpu"})).status_code == 403


def test_staff_see_every_project_with_totals(client, personas, cloud):
    cloud.samples.update(
        instances=[({"project_name": "def-owner"}, 2.0), ({"project_name": "chem"}, 1.0)],
        running=[({"project_name": "def-owner"}, 2.0), ({"project_name": "chem"}, 1.0)],
        vcpus=[({"project_name": "def-owner"}, 3.0), ({"project_name": "chem"}, 1.0)],
    )
    client.force_login(personas.staff)
    index = client.get(reverse("cloudstats:index"))
    assert [(p.name, p.instances, p.vcpus) for p in index.context["all_projects"]] == [
        ("chem", 1, 1.0),
        ("def-owner", 2, 3.0),
    ]
    assert [g["spec"].name for g in index.context["graphs"]] == ["cpu", "memory"]
    cloud.samples.update(seen=[(DB, 1.0)], now=[({"uuid": DB["uuid"]}, 1.0)], memory=[(DB, 96 * 1024**2)])
    page = client.get(project_url("project", project="chem"))
    assert page.status_code == 200  # staff open any project
    assert [i.name for i in page.context["instances"]] == ["db-1"]


def test_an_instance_of_another_project_is_refused(client, personas, cloud):
    client.force_login(personas.owner)
    cloud.samples.update(seen=[], now=[], memory=[], cpu=[], instance=[])  # no series of db-1 in def-owner
    response = client.get(project_url("instance", uuid=DB["uuid"]))
    assert response.status_code == 404
    graph = client.get(project_url("instance_graph", uuid=DB["uuid"], metric="cpu"))
    assert graph.status_code == 404
    assert graph.json()["detail"] == "No such instance in this project."
    assert all(f'uuid="{DB["uuid"]}"' in q and 'project_name="def-owner"' in q for q in cloud.queries)


def test_an_instance_page_has_its_summary_and_per_device_graphs(client, personas, cloud):
    cloud.samples.update(seen=[(WEB, 2.0)], now=[({"uuid": WEB["uuid"]}, 2.0)], memory=[(WEB, 128 * 1024**2)])
    cloud.ranges = {
        "read": [({"target_device": "vda"}, [1.0e9, 1.0e9 + 60], [1000.0, 2000.0])],
        "write": [({"target_device": "vda"}, [1.0e9, 1.0e9 + 60], [500.0, 0.0])],
    }
    client.force_login(personas.owner)
    page = client.get(project_url("instance", uuid=WEB["uuid"]))
    assert page.status_code == 200
    assert page.context["instance"].name == "web-1"
    assert [g["spec"].name for g in page.context["graphs"]] == [
        "cpu",
        "memory",
        "disk_bandwidth",
        "disk_iops",
        "network_bandwidth",
    ]
    figure = client.get(project_url("instance_graph", uuid=WEB["uuid"], metric="disk_bandwidth")).json()
    assert [trace["name"] for trace in figure["data"]] == ["read vda", "write vda"]
    assert figure["data"][0]["y"] == [1000.0, 2000.0]
    assert "sum by (target_device)" in cloud.queries[-1]


def test_a_graph_the_exporter_cannot_draw_says_so_without_asking(client, personas, cloud):
    client.force_login(personas.owner)
    for url in (
        project_url("project_graph", metric="memory_used"),
        project_url("instance_graph", uuid=WEB["uuid"], metric="vcpu"),
    ):
        figure = client.get(url).json()
        assert figure["no_data"] is True
        assert "prometheus-libvirt-exporter (Debian)" in figure["reason"]
    assert cloud.queries == []
    assert client.get(project_url("project_graph", metric="vcpu")).status_code == 404  # an instance's graph only
    assert client.get(project_url("project_graph", metric="nope")).status_code == 404


def test_exporter_down_gives_a_notice_and_json_503(client, personas, cloud):
    cloud.samples["health_up"] = [({"job": "libvirt", "instance": "127.0.0.1:9177"}, 0.0)]
    client.force_login(personas.owner)
    for url in (reverse("cloudstats:index"), project_url("project"), project_url("instance", uuid=WEB["uuid"])):
        page = client.get(url)
        assert page.status_code == 200, url
        assert "their exporter is not answering" in page.content.decode(), url
        assert "graphs.js" not in page.content.decode()
    graph = client.get(project_url("project_graph", metric="cpu"))
    assert graph.status_code == 503
    assert graph.json()["source"] == "libvirt-exporter"
    assert client.get(project_url("project_usage") + "?format=csv").status_code == 503


def test_libvirtd_down_behind_a_running_exporter_is_an_outage_too(client, personas, cloud):
    cloud.samples["health_libvirt"] = [({"job": "libvirt", "instance": "127.0.0.1:9177"}, 0.0)]
    client.force_login(personas.owner)
    assert client.get(project_url("project_graph", metric="cpu")).status_code == 503


def test_some_exporters_down_is_a_warning_not_an_outage(client, personas, cloud):
    cloud.samples["health_up"] = [({"instance": "hv1:9177"}, 1.0), ({"instance": "hv2:9177"}, 0.0)]
    cloud.samples["health_libvirt"] = [({"instance": "hv1:9177"}, 1.0)]
    client.force_login(personas.owner)
    page = client.get(project_url("project"))
    assert page.context["partial"].startswith("1 of 2 exporters answered")
    assert len(page.context["instances"]) == 2


def test_no_exporter_scraped_at_all_is_an_outage(client, personas, cloud):
    cloud.samples["health_up"] = []
    client.force_login(personas.owner)
    assert client.get(project_url("project_graph", metric="cpu")).status_code == 503


def test_prometheus_down_gives_a_notice_and_json_503(client, personas, cloud):
    cloud.down = True
    client.force_login(personas.owner)
    page = client.get(project_url("project"))
    assert page.status_code == 200
    assert "Prometheus is not answering" in page.content.decode()
    graph = client.get(project_url("project_graph", metric="cpu"))
    assert graph.status_code == 503
    assert graph.json()["source"] == "prometheus"


def test_a_membership_source_down_gives_a_503_page(client, personas, cloud, settings, tmp_path):
    settings.CLOUDSTATS_PROJECTS_FILE = str(tmp_path / "missing.yaml")
    client.force_login(personas.owner)
    page = client.get(project_url("project"))
    assert page.status_code == 503
    assert "directory of project members is not answering" in page.content.decode()
    graph = client.get(project_url("project_graph", metric="cpu"))
    assert graph.status_code == 503
    assert graph.json()["source"] == "cloud-membership"
    index = client.get(reverse("cloudstats:index"))
    assert index.status_code == 200  # the index shows the notice in place
    assert "directory of project members is not answering" in index.content.decode()


def test_a_period_from_a_minute_to_a_year(client, personas, cloud):
    client.force_login(personas.owner)
    assert client.get(project_url("project")).context["delta"] == 7 * 86400  # CLOUDSTATS_DEFAULT_DAYS
    assert client.get(project_url("project") + "?delta=3600").context["delta"] == 3600
    assert any("[3600s]" in q for q in cloud.queries)
    for bad in ("?delta=10", "?delta=abc", "?delta=99999999"):
        assert client.get(project_url("project") + bad).status_code == 400, bad
        assert client.get(project_url("project_graph", metric="cpu") + bad).status_code == 400, bad
    # a zoomed graph asks for its own period
    client.get(project_url("instance_graph", uuid=WEB["uuid"], metric="cpu") + "?start=1000000000&end=1000003600")
    assert "[3600s]" in cloud.queries[-2]  # the instance check covers the zoomed period
