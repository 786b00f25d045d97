"""Shared fixtures: the Slurm test tables and the same five personas everywhere.

Personas (tests/test_access.py walks every route as each of them):
  anonymous   not signed in
  owner       a cluster user, member of the Slurm account def-owner, with jobs
  member      another member of def-owner (a teammate of owner)
  outsider    a cluster user in def-other only
  staff       a staff member (Django is_staff), no Slurm account
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings
from factories import StaffFactory, UserFactory
from skipping import skip_or_fail
from slurm_factories import SlurmFixtures

from slurm.schema import create_tables
from userportal.powers import grant, powers

OWNER_ACCOUNT = "def-owner"
OTHER_ACCOUNT = "def-other"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The unmanaged Slurm tables exist in the test copy of the `slurm` database."""
    with django_db_blocker.unblock():
        create_tables(using="slurm")


# A second cluster, so tests can check that table names follow the cluster.
CLUSTERS = ["testcluster", "othercluster"]


@pytest.fixture(scope="session")
def slurm_tables(django_db_setup, django_db_blocker) -> None:
    """The tables of both test clusters, created once per session outside any transaction (SQLite's schema editor needs that).

    create_tables() is idempotent, so --reuse-db and a test database that already has them are fine.
    """
    with django_db_blocker.unblock(), override_settings(SLURM_CLUSTERS=CLUSTERS):
        create_tables(using="slurm", clusters=CLUSTERS)


@dataclass
class Personas:
    owner: Any
    member: Any
    outsider: Any
    staff: Any
    owner_job: Any
    slurm: SlurmFixtures


@pytest.fixture
def slurm(db) -> SlurmFixtures:
    fixtures = SlurmFixtures("testcluster")
    fixtures.tres()
    return fixtures


@pytest.fixture
def personas(slurm, django_user_model) -> Personas:
    slurm.account(OWNER_ACCOUNT)
    slurm.account(OTHER_ACCOUNT)
    slurm.user("owner", [OWNER_ACCOUNT])
    slurm.user("member", [OWNER_ACCOUNT])
    slurm.user("outsider", [OTHER_ACCOUNT])
    job = slurm.job("owner", OWNER_ACCOUNT)
    slurm.job("member", OWNER_ACCOUNT)
    slurm.job("outsider", OTHER_ACCOUNT)
    staff = StaffFactory(username="staffer")
    # The powers staff status alone used to give (reading job scripts never was one);
    # tests/test_staff_powers.py covers plain staff.
    grant(staff, [name for name in powers() if name != "jobscript-readers"])
    return Personas(
        owner=UserFactory(username="owner"),
        member=UserFactory(username="member"),
        outsider=UserFactory(username="outsider"),
        staff=staff,
        owner_job=job,
        slurm=slurm,
    )


# --- Playwright for Python driving Debian's chromium (/usr/bin/chromium): no browser download.
CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        skip_or_fail(f"{CHROMIUM} not found: apt-get install chromium")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def promtool():
    """Debian's promtool, which evaluates PromQL for tests/promtool_client.py (package prometheus)."""
    from promtool_client import PROMTOOL, have_promtool

    if not have_promtool():
        skip_or_fail(f"{PROMTOOL} not found: apt-get install prometheus")
    return PROMTOOL


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (health checks, Prometheus outage memory, throttles, API tokens)."""
    from django.core.cache import caches

    from slurm.models.global_tables import forget_catalogs
    from slurm.visibility import forget_uids
    from userportal.tokens import forget_cached_tokens

    for cache in caches.all():
        cache.clear()
    forget_uids()
    forget_cached_tokens()
    forget_catalogs()
    return


@pytest.fixture
def prom(monkeypatch):
    """The Prometheus client of the metrics sessions, replaced by a stub answering tagged unions."""
    from prom_stub import StubClient

    client = StubClient()
    monkeypatch.setattr("userportal.prometheus.get_client", lambda: client)
    return client


@pytest.fixture
def demo_prometheus(slurm_tables, settings, tmp_path):
    """The demo cluster (seed_demo, small) with the demo's real Prometheus loaded from it (demo/prometheus.py).

    Needs Debian's prometheus package: without it the test is skipped, and fails under CI=true.
    """
    import socket

    from django.core.cache import cache

    from demo.prometheus import DemoPrometheus, PrometheusMissing, binaries
    from demo.seed import seed_demo
    from userportal.prometheus import PROMETHEUS_DOWN, get_client

    try:
        binaries()
    except PrometheusMissing as exc:
        skip_or_fail(f"{exc} (apt-get install prometheus)")
    seed_demo(cluster="testcluster", seed=7, users=12, accounts=4, jobs=400, days=14)
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    demo = DemoPrometheus(tmp_path, *ports)
    demo.start("testcluster", hours=1)
    settings.PROMETHEUS_URL = demo.url
    get_client.cache_clear()  # the client and a remembered failure of the unit tests' dead URL
    cache.delete(PROMETHEUS_DOWN.key)
    yield demo
    demo.stop()
    get_client.cache_clear()
