"""pages against the stack's Prometheus, in-process: the scheduler totals are slurm-exporter's, the
login-node figures node_exporter's, the software shares the recording rule's; nothing names a user."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings
from django.urls import reverse

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
WEEK = 7 * 86400


@pytest.fixture
def pages(settings, stack_dir):
    settings.PAGES_SECTIONS = ["scheduler", "logins", "software"]
    settings.PAGES_LOGIN_NODES = ["login=cpu01:9100"]  # the stack has no login node: cpu01 stands in
    settings.PAGES_CACHE_SECONDS = 0
    return settings


def prometheus(query: str) -> list[dict]:
    answer = requests.get(f"{settings.PROMETHEUS_URL}/api/v1/query", params={"query": query}, timeout=10).json()
    return answer["data"]["result"]


def test_installed_cores_are_slurm_exporters(client, pages):
    body = client.get(reverse("pages:graph", kwargs={"figure": "cores"}) + f"?delta={WEEK}").json()
    installed = next(t for t in body["data"] if t["name"] == "installed")
    highest = max(float(r["value"][1]) for r in prometheus(f"max_over_time(slurm_cpus_total[{WEEK}s])"))
    assert max(y for y in installed["y"] if y is not None) == pytest.approx(highest)


def test_login_node_load_is_node_exporters(client, pages):
    body = client.get(reverse("pages:graph", kwargs={"figure": "login_load"}) + f"?delta={WEEK}").json()
    assert [t["name"] for t in body["data"]] == ["login"]
    assert body["data"][0]["x"][-1].endswith("Z")


def test_software_shares_add_up_and_name_no_user(client, pages):
    response = client.get(reverse("pages:index"))
    assert response.status_code == 200
    shares = response.context["shares"]
    assert shares, "the stack's jobs ran applications this week"
    assert sum(s.percent for s in shares) == pytest.approx(100)
    html = response.content.decode()
    for user in ("alice", "bob", "carol", "physics", "chem"):
        assert user not in html
