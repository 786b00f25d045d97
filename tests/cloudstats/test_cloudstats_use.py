"""Graphs with each preset, use over a period with CSV, and idle instances."""

from __future__ import annotations

import csv
import io

import pytest
from cloudstats_fixtures import DB, IDLE, WEB
from django.urls import reverse

from cloudstats import graphs, services
from userportal.prometheus import MetricsSession

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])
T = [1.0e9, 1.0e9 + 60]


def tt(labels: dict[str, str]) -> dict[str, str]:
    """Debian's labels as TrailblazingTurtle's exporter names them."""
    return {"uuid": labels["uuid"], "instance_name": labels["name"], "project_name": labels["project_name"],
            "instance_type": labels["flavor"], "user_name": "alice"}  # fmt: skip


def test_project_cpu_is_stacked_per_instance_with_the_allocation(cloud):
    cloud.ranges = {
        "used": [(WEB, T, [0.5, 0.25]), (IDLE, T, [0.01, 0.01]), ({**WEB, "uuid": "other"}, T, [1.0, 1.0])],
        "allocated": [({}, T, [3.0, 3.0])],
    }
    figure = graphs.build(
        MetricsSession(), "cpu", graphs.Scope(project="def-owner"), services.requested_period({"delta": "3600"})
    )
    names = [(trace["name"], trace.get("stackgroup"), trace.get("line")) for trace in figure["data"]]
    assert names == [
        ("idle-1", "one", None),
        ("web-1 (5b2a6f2e)", "one", None),  # two instances named web-1: their uuids tell them apart
        ("web-1 (other)", "one", None),
        ("allocated", None, {"dash": "dash"}),
    ]
    expr = cloud.queries[-1]
    assert 'sum by (uuid, name) (rate(libvirt_domain_info_cpu_time_seconds_total{project_name="def-owner"}' in expr
    assert "max by (uuid, name, project_name, flavor) (libvirt_domain_info_virtual_cpus" in expr


def test_staff_graphs_split_by_project(cloud):
    cloud.ranges = {
        "allocated": [({"project_name": "chem"}, T, [1e8, 1e8]), ({"project_name": "def-owner"}, T, [2e8, 2e8])]
    }
    figure = graphs.build(MetricsSession(), "memory", graphs.Scope(), services.requested_period({"delta": "3600"}))
    assert [trace["name"] for trace in figure["data"]] == ["chem", "def-owner"]
    assert "sum by (project_name)" in cloud.queries[-1]


def test_the_trailblazingturtle_preset_draws_vcpus_and_guest_memory(cloud, settings):
    settings.CLOUDSTATS_EXPORTER = "trailblazingturtle"
    cloud.ranges = {
        "used": [({"vcpu": "1"}, T, [2e9, 1e9]), ({"vcpu": "0"}, T, [5e8, 5e8])],
    }
    scope = graphs.Scope(project="def-owner", uuid=WEB["uuid"])
    figure = graphs.build(MetricsSession(), "vcpu", scope, services.requested_period({"delta": "3600"}))
    assert [(t["name"], t["y"], t.get("stackgroup")) for t in figure["data"]] == [
        ("vCPU 0", [0.5, 0.5], "one"),
        ("vCPU 1", [2.0, 1.0], "one"),  # nanoseconds per second: cores
    ]
    assert 'sum by (vcpu) (rate(libvirtd_domain_vcpu_time{project_name="def-owner",uuid="5b2a6f2e' in cloud.queries[-1]
    cloud.ranges = {"used": [(tt(WEB), T, [65536.0, 65536.0])], "allocated": [({}, T, [131072.0, 131072.0])]}
    figure = graphs.build(
        MetricsSession(), "memory_used", graphs.Scope(project="def-owner"), services.requested_period({"delta": "3600"})
    )
    assert [t["name"] for t in figure["data"]] == ["web-1", "allocated"]
    assert [t["y"][0] for t in figure["data"]] == pytest.approx([64 * 1024**2, 128 * 1024**2], rel=1e-3)  # KiB
    assert "libvirtd_domain_balloon_usable" in cloud.queries[-1]


def test_trailblazingturtle_instances_count_their_vcpus_and_show_the_user(client, personas, cloud, settings):
    settings.CLOUDSTATS_EXPORTER = "trailblazingturtle"
    cloud.samples.update(seen=[(tt(WEB), 2.0)], memory=[(tt(WEB), 131072.0)], now=[({"uuid": WEB["uuid"]}, 2.0)])
    client.force_login(personas.owner)
    page = client.get(reverse("cloudstats:project", kwargs={"project": "def-owner"}))
    (web,) = page.context["instances"]
    assert (web.name, web.flavor, web.user, web.memory_gib) == ("web-1", "c2-128m", "alice", 0.125)
    assert (
        "count by (uuid, instance_name, project_name, instance_type, user_name) (last_over_time(libvirtd_domain_vcpu_time"
        in cloud.queries[-1]
    )
    assert page.context["lacks"] == []
    assert [g["spec"].name for g in page.context["graphs"]][:3] == ["cpu", "memory", "memory_used"]


def use_samples(cloud):
    cloud.samples.update(
        vcpu_seconds=[(WEB, 240.0), (IDLE, 120.0), (DB, 120.0)],  # Σ of samples every step (30 s for 1 h)
        vcpus=[(WEB, 2.0), (IDLE, 1.0), (DB, 1.0)],
        memory_byte_seconds=[(WEB, 120 * 128 * 1024**2)],
        cpu_seconds=[(WEB, 360.0), (IDLE, 10.8), (DB, 36.0)],
        cpu_median=[(WEB, 0.05), (IDLE, 0.002), (DB, 0.01)],
        disk_read_bytes=[(WEB, 2 * 1024**3)],
        net_tx_bytes=[(WEB, 1024**3), (IDLE, 1024**2)],
    )


def test_use_per_instance_with_csv(client, personas, cloud):
    use_samples(cloud)
    cloud.samples.update(vcpu_seconds=[(WEB, 240.0), (IDLE, 120.0)])
    client.force_login(personas.member)
    url = reverse("cloudstats:project_usage", kwargs={"project": "def-owner"}) + "?delta=3600"
    page = client.get(url)
    web = page.context["rows"][0]
    assert (web.name, web.vcpu_hours, web.cpu_hours, web.cpu_percent) == ("web-1", 2.0, 0.1, 5.0)
    assert web.memory_gib_hours == pytest.approx(1 / 8)
    assert web.disk_read_gib == 2.0
    rows = list(csv.reader(io.StringIO(client.get(url + "&format=csv").content.decode())))
    assert rows[0][:6] == ["project", "instance", "uuid", "flavor", "user", "vcpu_hours_allocated"]
    assert rows[1][:7] == ["def-owner", "web-1", WEB["uuid"], "c2-128m", "", "2.0", "0.1"]
    assert 'project_name=~"def\\\\-owner"' in cloud.queries[-1]  # an escaped alternation of one project
    assert (
        "sum_over_time((max by (uuid, name, project_name, flavor) (libvirt_domain_info_virtual_cpus"
        in cloud.queries[-1]
    )


def test_csv_cells_cannot_be_formulas(client, personas, cloud):
    use_samples(cloud)
    cloud.samples["vcpu_seconds"] = [({**WEB, "name": "=cmd|' /C calc'!A0"}, 60.0)]
    client.force_login(personas.owner)
    url = reverse("cloudstats:project_usage", kwargs={"project": "def-owner"}) + "?format=csv"
    assert "'=cmd" in client.get(url).content.decode()


def test_staff_use_per_project_and_idle_instances(client, personas, cloud, settings):
    settings.CLOUDSTATS_IDLE_CPU_PERCENT = 1.0
    use_samples(cloud)
    client.force_login(personas.staff)
    cloud.samples.update(
        vcpu_seconds=[({"project_name": "def-owner"}, 360.0)], cpu_seconds=[({"project_name": "def-owner"}, 370.8)]
    )
    page = client.get(reverse("cloudstats:staff_usage") + "?delta=3600")  # a sample every 30 s
    (row,) = page.context["rows"]
    assert (row.project, row.vcpu_hours) == ("def-owner", 3.0)
    assert "sum by (project_name)" in cloud.queries[-1]
    use_samples(cloud)
    idle = client.get(reverse("cloudstats:idle") + "?delta=86400")
    assert [(r.name, round(r.typical_cpu_percent, 2)) for r in idle.context["rows"]] == [("idle-1", 0.2)]
    # web-1 at 5 % and db-1 at 1 % (not under 1 %) are not idle
    assert "quantile_over_time(0.5" in cloud.queries[-1]
