"""quotas from LDAP attributes (QUOTAS_SOURCE=ldap), against a fake directory at python-ldap's boundary."""

from __future__ import annotations

import logging
import re
from datetime import date

import ldap
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from quotas import alerts, ldap_source
from quotas.limits import Limits, limits_for
from quotas.models import QuotaAlert, UsageSnapshot
from userportal.conf import strict_ldap_attribute, strict_ldap_filter

pytestmark = pytest.mark.django_db(databases=["default", "slurm", "robinhood"])
TIB = 1024**4
GIB = 1024**3
_CN = re.compile(r"\(cn=((?:[^()\\]|\\[0-9a-fA-F]{2})*)\)")


class FakeDirectory:
    """What ldap.initialize returns, for a directory of posixGroup entries keyed by cn."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, list[bytes]]]] = []
        self.down = False
        self.connections: list[FakeConnection] = []

    def add(self, cn: str, *, ou: str = "groups", **attrs: str) -> None:
        values = {"cn": [cn.encode()], **{name: [value.encode()] for name, value in attrs.items()}}
        self.entries.append((f"cn={cn},ou={ou},dc=test", values))

    def initialize(self, uri: str) -> FakeConnection:
        conn = FakeConnection(self, uri)
        self.connections.append(conn)
        return conn

    @property
    def searches(self) -> list[dict]:
        return [search for conn in self.connections for search in conn.searches]


class FakeConnection:
    def __init__(self, directory: FakeDirectory, uri: str) -> None:
        self.directory, self.uri = directory, uri
        self.options: dict[int, object] = {}
        self.bound_as: tuple[str, str] | None = None
        self.searches: list[dict] = []
        self.unbound = False

    def set_option(self, option: int, value: object) -> None:
        self.options[option] = value

    def simple_bind_s(self, who: str, cred: str) -> None:
        if self.directory.down:
            raise ldap.SERVER_DOWN({"result": -1, "desc": "Can't contact LDAP server", "errno": 111})
        self.bound_as = (who, cred)

    def search_ext_s(self, base, scope, filterstr, attrlist, *, timeout):
        self.searches.append({"base": base, "scope": scope, "filter": filterstr, "attrs": attrlist, "timeout": timeout})
        assert "(objectClass=posixGroup)" in filterstr
        wanted = {_unescape(m).lower() for m in _CN.findall(filterstr)}
        found = [
            (dn, {name: values for name, values in attrs.items() if name in attrlist})
            for dn, attrs in self.directory.entries
            if attrs["cn"][0].decode().lower() in wanted
        ]
        return [*found, (None, ["ldap://elsewhere.test/dc=test"])]  # a continuation reference, not followed

    def unbind_s(self) -> None:
        self.unbound = True


def _unescape(value: str) -> str:
    return re.sub(r"\\([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


@pytest.fixture
def directory(monkeypatch, settings):
    settings.QUOTAS_SOURCE = "ldap"
    settings.QUOTAS_LDAP_SERVER_URI = "ldap://ldap.test"
    settings.QUOTAS_LDAP_BIND_DN = "cn=reader,dc=test"
    settings.QUOTAS_LDAP_BIND_PASSWORD = "reader-pw"
    settings.AUTH_LDAP_START_TLS = False
    settings.QUOTAS_LDAP_GROUP_SEARCH_BASE = "ou=groups,dc=test"
    settings.QUOTAS_LDAP_GROUP_FILTER = "(&(objectClass=posixGroup)(cn=%(group)s))"
    settings.QUOTAS_LDAP_GROUP_NAME_ATTR = "cn"
    settings.QUOTAS_LDAP_BYTES_ATTR = "hpcQuotaBytes"
    settings.QUOTAS_LDAP_INODES_ATTR = "hpcQuotaInodes"
    settings.QUOTAS_LDAP_NEARLINE_BYTES_ATTR = "hpcQuotaNearlineBytes"
    settings.QUOTAS_LDAP_CACHE_SECONDS = 300
    settings.QUOTAS_LDAP_TIMEOUT = 2.5
    settings.QUOTAS_DEFAULT_BYTES, settings.QUOTAS_DEFAULT_INODES = TIB, 500_000
    settings.QUOTAS_DEFAULT_NEARLINE_BYTES = 0
    fake = FakeDirectory()
    monkeypatch.setattr(ldap, "initialize", fake.initialize)
    return fake


@pytest.fixture
def storage(robinhood, personas):
    robinhood.add("owner", "def-owner", "", size=10_000, count=1000, blocks=2 * 1024**3)  # 1 TiB on disk
    robinhood.add("member", "def-owner", "", size=1000, count=500, blocks=1024)
    return robinhood


def test_each_group_gets_its_ldap_limits_and_the_defaults_for_missing_attributes(directory):
    directory.add("physics", hpcQuotaBytes="10T", hpcQuotaInodes="2000000", hpcQuotaNearlineBytes="50T")
    directory.add("chem", hpcQuotaBytes="1.5T")
    limits = limits_for(["physics", "chem", "nogroup"])
    assert limits["physics"] == Limits(10 * TIB, 2_000_000, 50 * TIB)
    assert limits["chem"] == Limits(int(1.5 * TIB), 500_000, 0)  # inodes, nearline: the defaults
    assert limits["nogroup"] == Limits(TIB, 500_000, 0)  # no entry at all
    [conn] = directory.connections
    [search] = conn.searches  # one search for every group of the call
    assert search["filter"] == (
        "(|(&(objectClass=posixGroup)(cn=chem))(&(objectClass=posixGroup)(cn=nogroup))"
        "(&(objectClass=posixGroup)(cn=physics)))"
    )
    assert search["base"] == "ou=groups,dc=test"
    assert search["scope"] == ldap.SCOPE_SUBTREE
    assert search["attrs"] == ["cn", "hpcQuotaBytes", "hpcQuotaInodes", "hpcQuotaNearlineBytes"]
    assert search["timeout"] == 2.5
    assert conn.options[ldap.OPT_NETWORK_TIMEOUT] == 2.5
    assert conn.options[ldap.OPT_TIMEOUT] == 2.5
    assert conn.bound_as == ("cn=reader,dc=test", "reader-pw")
    assert conn.unbound


def test_group_names_are_escaped_in_the_filter(directory):
    directory.add("physics", hpcQuotaBytes="10T")
    hostile = "x)(cn=*"
    limits = limits_for([hostile])
    [search] = directory.searches
    assert search["filter"] == r"(&(objectClass=posixGroup)(cn=x\29\28cn=\2a))"  # one group: no (|...)
    assert limits[hostile] == Limits(TIB, 500_000, 0)  # did not widen to physics


def test_names_match_without_case_and_a_duplicate_entry_is_ignored(directory, caplog):
    directory.add("Physics", hpcQuotaBytes="3T")
    directory.add("physics", ou="old-groups", hpcQuotaBytes="1T")
    with caplog.at_level(logging.WARNING, logger="quotas.ldap_source"):
        assert limits_for(["physics"])["physics"].bytes == 3 * TIB
    assert "several entries for group physics" in caplog.text
    assert "ou=old-groups" in caplog.text


def test_answers_are_cached_and_only_new_groups_are_searched(directory, settings):
    directory.add("physics", hpcQuotaBytes="10T")
    directory.add("chem", hpcQuotaBytes="2T")
    limits_for(["physics"])
    limits_for(["physics"])
    assert len(directory.searches) == 1
    assert limits_for(["physics", "chem"])["chem"].bytes == 2 * TIB
    assert [s["filter"] for s in directory.searches][1] == "(&(objectClass=posixGroup)(cn=chem))"
    settings.QUOTAS_LDAP_CACHE_SECONDS = 0
    limits_for(["physics"])
    limits_for(["physics"])
    assert len(directory.searches) == 4


def test_defaults_apply_at_read_time_not_when_cached(directory, settings):
    directory.add("chem", hpcQuotaBytes="2T")
    assert limits_for(["chem"])["chem"].inodes == 500_000
    settings.QUOTAS_DEFAULT_INODES = 7
    assert limits_for(["chem"])["chem"].inodes == 7
    assert len(directory.searches) == 1


def test_an_unreadable_value_falls_back_to_the_default(directory, caplog):
    directory.add("chem", hpcQuotaBytes="lots", hpcQuotaInodes="1000")
    with caplog.at_level(logging.WARNING, logger="quotas.limits"):
        limits = limits_for(["chem"])["chem"]
    assert limits == Limits(TIB, 1000, 0)
    assert "not a size: 'lots'" in caplog.text


def test_an_empty_attribute_setting_always_takes_the_default(directory, settings):
    settings.QUOTAS_LDAP_NEARLINE_BYTES_ATTR = ""
    directory.add("physics", hpcQuotaBytes="10T", hpcQuotaNearlineBytes="50T")
    assert limits_for(["physics"])["physics"] == Limits(10 * TIB, 500_000, 0)
    assert directory.searches[0]["attrs"] == ["cn", "hpcQuotaBytes", "hpcQuotaInodes"]


def test_many_groups_are_searched_in_chunks_over_one_connection(directory):
    names = [f"g{i:03d}" for i in range(450)]
    directory.add("g001", hpcQuotaBytes="5T")
    limits = limits_for(names)
    assert limits["g001"].bytes == 5 * TIB
    assert len(directory.connections) == 1
    assert len(directory.searches) == 3  # 200 + 200 + 50


def test_the_page_shows_the_ldap_quota_with_one_search(client, storage, personas, directory):
    directory.add("def-owner", hpcQuotaBytes="2T", hpcQuotaInodes="10000")
    client.force_login(personas.owner)
    response = client.get(reverse("quotas:user", kwargs={"username": "owner"}))
    assert response.status_code == 200
    [report] = response.context["reports"]
    assert report.limits == Limits(2 * TIB, 10_000, 0)
    assert report.bytes_percent == pytest.approx(50.0, abs=0.01)
    assert report.inodes_percent == pytest.approx(15.0)
    assert f'max="{2 * TIB}"' in response.content.decode()
    assert len(directory.searches) == 1


def test_the_page_renders_a_notice_when_ldap_is_down_and_does_not_wait_again(client, storage, personas, directory):
    directory.down = True
    client.force_login(personas.owner)
    url = reverse("quotas:user", kwargs={"username": "owner"})
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="alert alert-warning" role="alert"' in html
    assert "the LDAP directory is not answering" in html
    assert response.context["reports"] == []
    assert client.get(url).status_code == 200
    assert len(directory.connections) == 1  # the failure is remembered: no second timeout


def test_any_ldap_error_becomes_unavailable(directory, monkeypatch):
    def refused(uri):
        raise ldap.LDAPError({"desc": "Bad parameter to an ldap routine"})

    monkeypatch.setattr(ldap, "initialize", refused)
    with pytest.raises(ldap_source.LdapQuotasUnavailable, match="Bad parameter"):
        limits_for(["chem"])


def test_the_alert_task_records_use_logs_and_skips_when_ldap_is_down(storage, directory, caplog):
    directory.down = True
    today = date(2026, 11, 22)
    with caplog.at_level(logging.WARNING, logger="quotas.services"):
        result = alerts.check_quotas(today=today)
    assert result.skipped.startswith("ldap: Can't contact LDAP server")
    assert result.raised == [] and result.mailed == 0
    assert "alerts skipped" in caplog.text
    assert UsageSnapshot.objects.filter(group="def-owner", day=today).exists()
    assert not QuotaAlert.objects.exists()

    from quotas.tasks import check_quotas

    outcome = check_quotas.delay().get()  # no exception, no retry: the next beat run tries again
    assert outcome["skipped"].startswith("ldap:")


def test_the_alert_task_uses_ldap_limits(storage, directory, settings):
    settings.QUOTAS_ALERT_THRESHOLDS = [80, 90, 100]
    directory.add("def-owner", hpcQuotaBytes="1100G")  # 1 TiB used of 1100 GiB: 93 %
    result = alerts.check_quotas(today=date(2026, 11, 22))
    assert result.raised == ["def-owner"]
    assert QuotaAlert.objects.get(group="def-owner").level == 90


# --- settings readers ----------------------------------------------------------------------------
def test_filter_template_must_hold_the_placeholder_in_one_balanced_filter(monkeypatch):
    monkeypatch.setenv("X_FILTER", "(&(objectClass=group)(sAMAccountName=%(group)s))")
    assert strict_ldap_filter("X_FILTER", default="", placeholder="group").startswith("(&")
    for bad, reason in [
        ("(cn=physics)", "must contain %\\(group\\)s"),
        ("(&(cn=%(group)s)(gid=%(gid)s))", "only %-placeholder"),
        ("(&(cn=%(group)s)", "balanced parentheses"),
        ("(cn=%(group)s)(cn=x)", "balanced parentheses"),
        ("cn=%(group)s", "balanced parentheses"),
    ]:
        monkeypatch.setenv("X_FILTER", bad)
        with pytest.raises(ImproperlyConfigured, match=f"X_FILTER=.* is not an LDAP filter template: .*{reason}"):
            strict_ldap_filter("X_FILTER", default="", placeholder="group")


def test_attribute_names_are_checked(monkeypatch):
    monkeypatch.setenv("X_ATTR", "lustreQuota-1")
    assert strict_ldap_attribute("X_ATTR", default="cn") == "lustreQuota-1"
    monkeypatch.setenv("X_ATTR", "2.5.4.3")
    assert strict_ldap_attribute("X_ATTR", default="cn") == "2.5.4.3"
    monkeypatch.setenv("X_ATTR", "")
    assert strict_ldap_attribute("X_ATTR", default="cn", allow_empty=True) == ""
    for bad in ("", "quota bytes", "cn)(uid=*"):
        monkeypatch.setenv("X_ATTR", bad)
        with pytest.raises(ImproperlyConfigured, match="is not an LDAP attribute name"):
            strict_ldap_attribute("X_ATTR", default="cn")


def _start_django(tmp_path, code: str = "", **env_vars: str):
    """django.setup() in a fresh interpreter with only these portal settings in its environment."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "SLURM", "OIDC_", "AUTH_LDAP", "QUOTAS_"))
    }
    env.update(PORTAL_DEBUG="true", PORTAL_VAR_DIR=str(tmp_path), **env_vars)
    env.pop("SECRET_KEY", None)
    setup = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='userportal.settings'; django.setup()"
    return subprocess.run(
        [sys.executable, "-c", f"{setup}\n{code}"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ldap_source_without_a_directory_stops_start_up(tmp_path):
    result = _start_django(tmp_path, QUOTAS_SOURCE="ldap")
    assert result.returncode != 0
    assert "QUOTAS_SOURCE=ldap needs QUOTAS_LDAP_SERVER_URI" in result.stderr


def test_ldap_quotas_need_no_ldap_login(tmp_path):
    """QUOTAS_LDAP_SERVER_URI alone: quotas read LDAP, password login stays off."""
    import json

    code = (
        "import json; from django.conf import settings; from quotas.ldap_source import LdapQuotaConfig\n"
        "c = LdapQuotaConfig.from_settings()\n"
        "print(json.dumps([settings.LDAP_ENABLED, c.uri, c.bind_dn, c.base,"
        " any('LDAP' in b for b in settings.AUTHENTICATION_BACKENDS)]))"
    )
    result = _start_django(
        tmp_path,
        code,
        QUOTAS_SOURCE="ldap",
        QUOTAS_LDAP_SERVER_URI="ldap://directory.test",
        QUOTAS_LDAP_BIND_DN="cn=quota-reader,dc=test",
        QUOTAS_LDAP_BIND_PASSWORD="pw",
        QUOTAS_LDAP_GROUP_SEARCH_BASE="ou=groups,dc=test",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        False,
        "ldap://directory.test",
        "cn=quota-reader,dc=test",
        "ou=groups,dc=test",
        False,
    ]
