"""quotas' section of the user summary: groups against quotas, alerts, and Robinhood down."""

from __future__ import annotations

import pytest
from django.urls import reverse

from quotas.models import Quota, QuotaAlert

pytestmark = pytest.mark.django_db(databases=["default", "slurm", "robinhood"])
TIB = 1024**4


def summary_url(username: str = "owner") -> str:
    return reverse("usersummary:user", kwargs={"username": username})


def test_the_summary_shows_storage_against_quota_and_the_alert(client, robinhood, personas):
    robinhood.add("owner", "def-owner", "", size=1, count=1000, blocks=2 * 1024**3)  # 1 TiB
    Quota.objects.create(group="def-owner", bytes_limit=2 * TIB, inodes_limit=10_000)
    QuotaAlert.objects.create(group="def-owner", level=80, bytes_percent=85)
    client.force_login(personas.owner)
    response = client.get(summary_url())
    [item] = [i for i in response.context["sections"] if i.section.key == "quotas"]
    assert item.unavailable is None
    assert "def-owner has passed 80 % of its quota." in item.html
    assert "(50.0 %)" in item.html
    assert item.link == reverse("quotas:user", kwargs={"username": "owner"})


def test_robinhood_down_makes_only_the_storage_section_unavailable(client, personas, monkeypatch):
    from quotas import services

    def down(*args, **kwargs):
        raise services.RobinhoodUnavailable("down")

    monkeypatch.setattr(services, "group_totals", down)
    client.force_login(personas.owner)
    response = client.get(summary_url())
    assert response.status_code == 200
    items = {i.section.key: i for i in response.context["sections"]}
    assert items["quotas"].unavailable
    assert "Robinhood database is not answering" in response.content.decode()
    assert items["identity"].unavailable is None
