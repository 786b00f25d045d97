"""cloudstats on the real stack: libvirtd's QEMU guests, Debian's libvirt exporter, Prometheus, Apache.

The guests (scripts/stack.d/libvirt.sh, docs/stack.md "Virtual machines"):
  web-1   physics  2 vCPUs  busy, disk and network
  db-1    chem     1 vCPU   busy, disk and network
  idle-1  physics  1 vCPU   idle
Project members (etc/portal/cloud-projects.yaml, the LDAP groups of the same names):
physics alice, bob, staffer; chem bob, carol. dave is in neither.
Pages are asked through Apache as the Shibboleth stand-in sets the user; the LDAP source in-process.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests
from skipping import skip_or_fail
from stack_waiting import wait_for

from cloudstats import membership

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30
STAFF = {"X-Test-Remote-User": "staffer@example.org", "X-Test-Affiliation": "staff@example.org"}


def as_user(name: str) -> dict[str, str]:
    return {"X-Test-Remote-User": f"{name}@example.org", "X-Test-Affiliation": "member@example.org"}


def prom(expr: str) -> list[dict]:
    answer = requests.get(f"{os.environ['PROMETHEUS_URL']}/api/v1/query", params={"query": expr}, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]["result"]


def get(path: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(os.environ["PORTAL_STACK_URL"] + path, headers=headers, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def guests(stack_dir: Path) -> dict[str, dict[str, str]]:
    """name -> the labels of the running guests, once Prometheus has a CPU rate for each of them."""
    failed = stack_dir / "data" / "libvirt.failed"
    if failed.exists() or os.environ.get("PORTAL_STACK_LIBVIRT") == "no":
        reason = failed.read_text().strip() if failed.exists() else "PORTAL_STACK_LIBVIRT=no"
        skip_or_fail(f"the stack runs no VMs: {reason}")

    def ready() -> dict[str, dict[str, str]] | None:
        rates = prom('rate(libvirt_domain_info_cpu_time_seconds_total{job="libvirt"}[2m]) > 0')
        found = {item["metric"]["name"]: item["metric"] for item in rates}
        return found if {"web-1", "db-1", "idle-1"} <= set(found) else None

    return wait_for(ready, 180, "a CPU rate in Prometheus for the three guests", interval=2)


def figure(path: str, headers: dict[str, str]) -> dict:
    response = get(path, headers)
    assert response.status_code == 200, (path, response.text[:300])
    return response.json()


def drawn(fig: dict) -> list[str]:
    """The names of the traces with at least one value."""
    return [trace["name"] for trace in fig["data"] if any(v is not None for v in trace["y"])]


def test_a_member_sees_their_project_its_instances_and_graphs(guests):
    alice = as_user("alice")
    index = get("/secure/cloudstats/", alice)
    assert index.status_code == 200
    assert 'data-project="physics"' in index.text and 'data-project="chem"' not in index.text
    page = get("/secure/cloudstats/project/physics/?delta=3600", alice)
    assert page.status_code == 200
    for name in ("web-1", "idle-1"):
        assert guests[name]["uuid"] in page.text
        assert guests[name]["flavor"] in page.text
    assert guests["db-1"]["uuid"] not in page.text
    assert "does not report" in page.text  # Debian's exporter: no per-vCPU time, no guest memory, no user
    base = "/secure/cloudstats/project/physics/graph/"
    cpu = figure(base + "cpu.json?delta=3600", alice)
    assert {"web-1", "idle-1", "allocated"} <= set(drawn(cpu))
    assert max(v for t in cpu["data"] if t["name"] == "allocated" for v in t["y"] if v is not None) == 3  # 2 + 1 vCPUs
    for name in ("memory", "disk_bandwidth", "disk_iops", "network_bandwidth"):
        assert drawn(figure(f"{base}{name}.json?delta=3600", alice)), name
    web = guests["web-1"]["uuid"]
    instance = get(f"/secure/cloudstats/project/physics/{web}/?delta=3600", alice)
    assert instance.status_code == 200
    assert "c2-128m" in instance.text
    ibase = f"/secure/cloudstats/project/physics/{web}/graph/"
    assert set(drawn(figure(ibase + "cpu.json?delta=3600", alice))) == {"used", "allocated"}
    assert set(drawn(figure(ibase + "disk_bandwidth.json?delta=3600", alice))) == {"read vda", "write vda"}
    tap = f"tap{web[:11]}"
    assert set(drawn(figure(ibase + "network_bandwidth.json?delta=3600", alice))) == {f"received {tap}", f"sent {tap}"}
    usage = get("/secure/cloudstats/project/physics/usage/?delta=3600&format=csv", alice)
    rows = {row["instance"]: row for row in csv.DictReader(io.StringIO(usage.text))}
    assert set(rows) == {"web-1", "idle-1"}
    assert float(rows["web-1"]["vcpu_hours_allocated"]) > 0 and float(rows["web-1"]["vcpu_hours_used"]) > 0


@pytest.mark.parametrize("user", ["carol", "dave"])
def test_another_user_is_refused(guests, user):
    web = guests["web-1"]["uuid"]
    for path in (
        "/secure/cloudstats/project/physics/",
        "/secure/cloudstats/project/physics/graph/cpu.json",
        f"/secure/cloudstats/project/physics/{web}/",
        "/secure/cloudstats/project/physics/usage/",
        "/secure/cloudstats/idle/",
    ):
        assert get(path, as_user(user)).status_code == 403, (user, path)


def test_staff_see_every_project(guests):
    index = get("/secure/cloudstats/?delta=3600", STAFF)
    assert index.status_code == 200
    section = index.text[index.text.index('id="all-projects"') :]
    assert 'data-project="physics"' in section and 'data-project="chem"' in section
    assert set(drawn(figure("/secure/cloudstats/graph/cpu.json?delta=3600", STAFF))) >= {"chem", "physics"}
    chem = get("/secure/cloudstats/project/chem/?delta=3600", STAFF)
    assert chem.status_code == 200 and guests["db-1"]["uuid"] in chem.text
    usage = get("/secure/cloudstats/usage/?delta=3600&format=csv", STAFF)
    assert {row["project"] for row in csv.DictReader(io.StringIO(usage.text))} == {"chem", "physics"}

    def idle_names() -> list[str] | None:
        page = get("/secure/cloudstats/idle/?delta=3600", STAFF)
        listed = [name for name in ("web-1", "db-1", "idle-1") if f'data-uuid="{guests[name]["uuid"]}"' in page.text]
        return listed if listed == ["idle-1"] else None

    # idle-1's typical CPU use (the median of its rate) stays well under 1 % once its boot is past
    wait_for(idle_names, 240, "the idle page to list idle-1 alone", interval=10)


def test_an_instance_of_another_project_in_the_url_is_refused(guests):
    db, web = guests["db-1"]["uuid"], guests["web-1"]["uuid"]
    alice = as_user("alice")
    assert get(f"/secure/cloudstats/project/physics/{db}/", alice).status_code == 404
    graph = get(f"/secure/cloudstats/project/physics/{db}/graph/cpu.json", alice)
    assert graph.status_code == 404
    assert graph.headers["Content-Type"].startswith("application/json")
    bob = as_user("bob")  # a member of both projects: each instance under its own project only
    assert get(f"/secure/cloudstats/project/chem/{web}/", bob).status_code == 404
    assert get(f"/secure/cloudstats/project/physics/{web}/", bob).status_code == 200


@pytest.mark.django_db(databases=["default"])
def test_project_members_from_the_stacks_ldap_groups(stack_dir, settings):
    assert settings.CLOUDSTATS_LDAP_SERVER_URI.startswith("ldap://127.0.0.1:"), "the stack's slapd (portal.env)"
    settings.CLOUDSTATS_MEMBERSHIP, settings.CLOUDSTATS_CACHE_SECONDS = "ldap", 0
    assert membership.projects_of("alice") == {"physics"}
    assert membership.projects_of("bob") == {"physics", "chem"}
    assert membership.projects_of("carol") == {"chem"}
    assert membership.projects_of("dave") == set()


def libvirt_scraped(value: str) -> bool:
    return any(item["value"][1] == value for item in prom('up{job="libvirt"}'))


@pytest.fixture
def exporter_down(stack_dir: Path, guests):
    """The exporter stopped by its recorded pid until Prometheus has seen it down; then `scripts/stack up`."""
    pid = int((stack_dir / "run" / "libvirt-exporter.pid").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: libvirt_scraped("0"), 60, "Prometheus to scrape the stopped exporter (up == 0)", interval=1)
        yield
    finally:
        up = subprocess.run(
            [str(ROOT / "scripts" / "stack"), "up", "--no-jobs"], capture_output=True, text=True, timeout=300
        )
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        wait_for(lambda: libvirt_scraped("1"), 60, "Prometheus to scrape the exporter again", interval=1)


def test_exporter_down_gives_a_notice_and_json_503(exporter_down, guests):
    alice = as_user("alice")
    for path in (
        "/secure/cloudstats/",
        "/secure/cloudstats/project/physics/",
        f"/secure/cloudstats/project/physics/{guests['web-1']['uuid']}/",
    ):
        page = get(path, alice)
        assert page.status_code == 200, path
        assert "their exporter is not answering" in page.text, path
        assert "plotly" not in page.text, path  # no graph is drawn
    for path in (
        "/secure/cloudstats/project/physics/graph/cpu.json",
        f"/secure/cloudstats/project/physics/{guests['web-1']['uuid']}/graph/memory.json",
    ):
        response = get(path, alice)
        assert response.status_code == 503, (path, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["source"] == "libvirt-exporter"
