"""quotas: Robinhood's byte rule and HSM split, quota sources, the page, the alerts."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from quotas import alerts, services
from quotas.limits import Limits, limits_for
from quotas.models import AcctStat, Quota, QuotaAlert, UsageSnapshot
from quotas.router import ReadOnlyRobinhoodDatabase

pytestmark = pytest.mark.django_db(databases=["default", "slurm", "robinhood"])
TIB = 1024**4


@pytest.fixture
def storage(robinhood, personas):
    robinhood.add("owner", "def-owner", "", size=10_000, count=1000, blocks=2 * 1024**3)  # 1 TiB on disk
    robinhood.add("owner", "def-owner", "", size=4096, count=10, blocks=8, type_="dir")
    robinhood.add("member", "def-owner", "new", size=1000, count=5, blocks=1024)
    robinhood.add("member", "def-owner", "synchro", size=3000, count=3, blocks=10)
    robinhood.add("member", "def-owner", "released", size=5 * TIB, count=40, blocks=0)
    robinhood.add("root", "def-owner", "", size=1, count=1, blocks=1, type_="dir")
    robinhood.add("tiny", "def-owner", "", size=1, count=2, blocks=1)
    robinhood.add("outsider", "def-other", "", size=1, count=100, blocks=100)
    return robinhood


def test_byte_rule_and_hsm_split(storage):
    totals = services.group_totals(["def-owner"])["def-owner"]
    assert totals["project"].bytes == (2 * 1024**3 + 8 + 1024 + 1 + 1) * 512
    assert totals["project"].inodes == 1000 + 10 + 5 + 1 + 2
    assert totals["disk"].bytes == 10 * 512  # archived and on disk: blocks
    assert totals["tape"].bytes == 5 * TIB  # released: the size, blocks are 0
    assert totals["tape"].inodes == 40


def test_users_inside_a_group_exclude_root_and_near_empty_owners(storage):
    users = services.users_by_group(["def-owner"])["def-owner"]
    assert [u.user for u in users] == ["owner", "member"]
    assert users[1].nearline_tape == 5 * TIB


def test_owner_page_shows_each_group_against_its_quota(client, storage, personas):
    Quota.objects.create(group="def-owner", bytes_limit=2 * TIB, inodes_limit=10_000)
    client.force_login(personas.owner)
    response = client.get(reverse("quotas:user", kwargs={"username": "owner"}))
    assert response.status_code == 200
    [report] = response.context["reports"]
    assert report.group == "def-owner"
    assert report.bytes_percent == pytest.approx(50.0, abs=0.01)
    assert report.inodes_percent == pytest.approx(10.18)
    assert report.nearline_tape.bytes == 5 * TIB
    assert report.limits.nearline_bytes == 0
    assert report.nearline_tape_percent is None


def test_quotas_index_redirects_to_the_users_page(client, personas):
    client.force_login(personas.owner)
    assert client.get(reverse("quotas:index"))["Location"] == reverse("quotas:user", kwargs={"username": "owner"})


def test_another_users_page_is_refused(client, personas):
    client.force_login(personas.member)
    assert client.get(reverse("quotas:user", kwargs={"username": "owner"})).status_code == 403


def test_page_renders_a_notice_when_robinhood_is_down(client, personas, monkeypatch):
    def down(*args, **kwargs):
        raise services.RobinhoodUnavailable("down")

    monkeypatch.setattr(services, "reports_for", down)
    client.force_login(personas.owner)
    response = client.get(reverse("quotas:user", kwargs={"username": "owner"}))
    assert response.status_code == 200
    assert "Robinhood" in response.content.decode()


def test_a_database_error_becomes_robinhood_unavailable(monkeypatch):
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("no such table: ACCT_STAT")

    monkeypatch.setattr(AcctStat.objects, "filter", broken)
    with pytest.raises(services.RobinhoodUnavailable):
        services.groups_with_files("owner")


def test_robinhood_is_read_only(storage):
    item = AcctStat.objects.filter(uid="owner").first()
    item.size = 1
    with pytest.raises(ReadOnlyRobinhoodDatabase):
        item.save()


@pytest.mark.parametrize("users", [1, 3])
def test_page_query_count_is_flat(client, robinhood, personas, users, django_assert_max_num_queries):
    for i in range(users):
        robinhood.add(f"user{i}", "def-owner", "", size=10, count=10, blocks=10)
    client.force_login(personas.owner)
    with (
        django_assert_max_num_queries(10),
        django_assert_max_num_queries(1, using="slurm"),
        django_assert_max_num_queries(3, using="robinhood"),
    ):
        response = client.get(reverse("quotas:user", kwargs={"username": "owner"}))
    assert len(response.context["reports"][0].users) == users


def test_quota_file_in_json_and_yaml(tmp_path, settings):
    data = {
        "default": {"bytes": "2T", "inodes": 1000},
        "groups": {"def-owner": {"bytes": "500 GiB", "nearline_bytes": "10T"}},
    }
    path = tmp_path / "quotas.json"
    path.write_text(json.dumps(data))
    settings.QUOTAS_SOURCE, settings.QUOTAS_FILE = "file", str(path)
    limits = limits_for(["def-owner", "other"])
    assert limits["def-owner"] == Limits(500 * 1024**3, 1000, 10 * TIB)
    assert limits["other"] == Limits(2 * TIB, 1000, 0)
    yaml_path = tmp_path / "quotas.yaml"
    yaml_path.write_text("default:\n  bytes: 1T\n  inodes: 5\n")
    settings.QUOTAS_FILE = str(yaml_path)
    assert limits_for(["x"])["x"] == Limits(TIB, 5, 0)


def test_trend_projects_the_day_the_quota_fills():
    today = date(2026, 11, 22)
    points = [(today - timedelta(days=4 - i), 100 + 10 * i) for i in range(5)]  # +10 bytes a day, 140 today
    fit = alerts.trend(points, 200, today=today)
    assert fit.bytes_per_day == pytest.approx(10.0)
    assert fit.full_on == today + timedelta(days=7)
    assert alerts.trend(points[:1], 200, today=today).full_on is None
    assert alerts.trend([(today - timedelta(days=1), 5), (today, 5)], 200, today=today).full_on is None


def test_alerts_mail_members_once_per_threshold_and_clear(
    storage, personas, settings, django_capture_on_commit_callbacks
):
    settings.QUOTAS_ALERT_THRESHOLDS = [80, 90, 100]
    personas.owner.email = "owner@example.org"
    personas.owner.save()
    personas.member.email = "member@example.org"
    personas.member.save()
    Quota.objects.create(group="def-owner", bytes_limit=int(1.15 * TIB), inodes_limit=10**6)  # ~87 % used
    today = date(2026, 11, 22)
    UsageSnapshot.objects.create(
        group="def-owner", day=today - timedelta(days=7), bytes_used=int(0.5 * TIB), inodes_used=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = alerts.check_quotas(today=today)
    assert result.raised == ["def-owner"]
    alert = QuotaAlert.objects.get(group="def-owner")
    assert alert.level == 80
    assert alert.full_on is not None
    assert alert.bytes_per_day > 0
    assert sorted(m.to[0] for m in mail.outbox) == ["member@example.org", "owner@example.org"]
    assert "80" in mail.outbox[0].subject
    assert UsageSnapshot.objects.filter(group="def-owner", day=today).count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        alerts.check_quotas(today=today)  # a redelivered task: no second mail
    assert len(mail.outbox) == 2

    Quota.objects.filter(group="def-owner").update(bytes_limit=100 * TIB)
    with django_capture_on_commit_callbacks(execute=True):
        result = alerts.check_quotas(today=today)
    assert result.cleared == ["def-owner"]
    assert QuotaAlert.objects.get(group="def-owner").level == 0


def test_banner_on_the_page_when_an_alert_is_raised(client, storage, personas):
    QuotaAlert.objects.create(group="def-owner", level=90, bytes_percent=91, full_on=date(2030, 1, 1))
    client.force_login(personas.owner)
    content = client.get(reverse("quotas:user", kwargs={"username": "owner"})).content.decode()
    assert 'data-quota-alert="def-owner"' in content
    assert "2030-01-01" in content


def test_check_task_runs(storage):
    from quotas.tasks import check_quotas

    assert check_quotas.delay().get()["groups"] == 2


def test_seed_robinhood_is_deterministic(db):
    from quotas import demo

    first = [
        (r.uid, r.gid, r.lhsm_status, r.size) for r in demo.demo_rows([("alice", "physics"), ("bob", "chem")], seed=3)
    ]
    again = [
        (r.uid, r.gid, r.lhsm_status, r.size) for r in demo.demo_rows([("bob", "chem"), ("alice", "physics")], seed=3)
    ]
    assert first == again
    assert len(first) >= 4


def test_seed_robinhood_command_dry_run_writes_nothing(db, capsys):
    before = AcctStat.objects.count()
    call_command("seed_robinhood", "--dry-run")
    assert "would write" in capsys.readouterr().out
    assert AcctStat.objects.count() == before
