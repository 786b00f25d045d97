"""QUOTAS_SOURCE=ldap against the stack's slapd: the quotas page's limits come from the groups' entries.

The stack gives physics, chem and staff posixGroup entries with the hpcQuotaGroup attributes of
scripts/stack.d/hpc-quota.schema (values in ldap_quota_groups, scripts/stack.d/services.sh):
  physics  hpcQuotaBytes 2T    hpcQuotaInodes 1000000  hpcQuotaNearlineBytes 10T
  chem     hpcQuotaBytes 1.5T  hpcQuotaInodes 600000   (no nearline: the default, none)
  staff    hpcQuotaBytes 500G  (no inodes: the default)  hpcQuotaNearlineBytes 1T
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from quotas import alerts
from quotas.limits import Limits
from quotas.models import QuotaAlert, UsageSnapshot

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm", "robinhood"])]
GIB, TIB = 1024**3, 1024**4


@pytest.fixture
def ldap_quotas(stack_dir, settings):
    assert settings.QUOTAS_LDAP_SERVER_URI.startswith("ldap://127.0.0.1:"), "the stack's slapd (portal.env)"
    settings.QUOTAS_SOURCE = "ldap"
    settings.QUOTAS_LDAP_GROUP_SEARCH_BASE = os.environ["AUTH_LDAP_GROUP_SEARCH_BASE"]
    settings.QUOTAS_DEFAULT_BYTES, settings.QUOTAS_DEFAULT_INODES = TIB, 500_000
    settings.QUOTAS_DEFAULT_NEARLINE_BYTES = 0
    return settings


def _page(client, username):
    client.force_login(get_user_model().objects.get_or_create(username=username)[0])
    return client.get(reverse("quotas:user", kwargs={"username": username}))


def test_alices_physics_quota_comes_from_ldap(client, ldap_quotas):
    response = _page(client, "alice")
    assert response.status_code == 200
    assert response.context["unavailable"] is None
    physics = {r.group: r for r in response.context["reports"]}["physics"]
    assert physics.limits == Limits(2 * TIB, 1_000_000, 10 * TIB)
    used = (150 + 20 + 2) * GIB + 4096 * 1200 + 1048576 + 4096  # Robinhood's rows (robinhood.sh)
    assert physics.project.bytes == used
    assert physics.bytes_percent == pytest.approx(used / (2 * TIB) * 100)
    assert physics.nearline_tape_percent == pytest.approx(2048 * GIB / (10 * TIB) * 100)
    html = response.content.decode().replace("\xa0", " ")  # filesizeformat joins number and unit with nbsp
    section = html[html.index('data-group="physics"') :]
    assert f'max="{2 * TIB}"' in section
    assert "of 2.0 TB" in section
    assert "of 1,000,000" in section
    assert "10.0 TB" in section  # the nearline quota


def test_bobs_two_groups_come_from_one_search_with_the_defaults_for_missing_attributes(client, ldap_quotas):
    response = _page(client, "bob")
    reports = {r.group: r for r in response.context["reports"]}
    assert set(reports) == {"chem", "physics"}
    assert reports["chem"].limits == Limits(int(1.5 * TIB), 600_000, 0)
    assert reports["physics"].limits.bytes == 2 * TIB
    chem_used = 920 * GIB + 4096 * 5000 + 4096
    assert reports["chem"].bytes_percent == pytest.approx(chem_used / (1.5 * TIB) * 100)  # 59.9 %, not 89.9 %
    assert "of 1.5 TB" in response.content.decode().replace("\xa0", " ")


def test_staffs_group_takes_the_default_inodes(client, ldap_quotas):
    reports = {r.group: r for r in _page(client, "staffer").context["reports"]}
    assert reports["staff"].limits == Limits(500 * GIB, 500_000, TIB)


def test_a_wrong_ldap_uri_gives_the_page_a_notice(client, ldap_quotas):
    ldap_quotas.QUOTAS_LDAP_SERVER_URI = "ldap://127.0.0.1:9"  # nothing listens
    response = _page(client, "alice")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="alert alert-warning" role="alert"' in html
    assert "the LDAP directory is not answering" in html
    assert response.context["reports"] == []


def test_a_wrong_bind_password_gives_the_page_a_notice(client, ldap_quotas):
    ldap_quotas.QUOTAS_LDAP_BIND_PASSWORD = "not-the-password"
    response = _page(client, "bob")
    assert response.status_code == 200
    assert "the LDAP directory is not answering" in response.content.decode()


@pytest.fixture
def silent_server():
    """A TCP server that accepts and never answers: an LDAP server hung after connect."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_hung_directory_times_out_into_the_notice(client, ldap_quotas, silent_server):
    ldap_quotas.QUOTAS_LDAP_SERVER_URI = silent_server
    ldap_quotas.QUOTAS_LDAP_TIMEOUT = 1.0
    started = time.monotonic()
    response = _page(client, "alice")
    assert time.monotonic() - started < 10
    assert response.status_code == 200
    assert "the LDAP directory is not answering" in response.content.decode()


def test_the_alert_task_uses_ldap_limits_and_skips_when_ldap_is_down(ldap_quotas):
    result = alerts.check_quotas(cluster="testcluster", dry_run=True)
    assert result.skipped == ""
    assert "chem" not in result.raised  # 59.9 % of its LDAP quota (89.9 % of the 1 TiB default)
    ldap_quotas.QUOTAS_LDAP_SERVER_URI = "ldap://127.0.0.1:9"
    result = alerts.check_quotas(cluster="testcluster")
    assert result.skipped.startswith("ldap:")
    assert not QuotaAlert.objects.exists()
    assert UsageSnapshot.objects.filter(group="chem").exists()  # the use is still recorded
