"""Fixtures for the slurm app's tests: the unmanaged tables on the slurm test database."""

from __future__ import annotations

import pytest
from django.test import override_settings
from pytest_django import DjangoDbBlocker

from slurm.schema import create_tables
from slurm.testing import SlurmFixtures

# A second cluster, so tests can check that table names follow the cluster.
CLUSTERS = ["testcluster", "othercluster"]


@pytest.fixture(scope="session")
def slurm_tables(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> None:
    """Create the slurm tables once per session, outside any transaction (SQLite's schema editor needs that).

    create_tables() is idempotent, so --reuse-db and a test database that already has them are fine.
    """
    with django_db_blocker.unblock(), override_settings(SLURM_CLUSTERS=CLUSTERS):
        create_tables(using="slurm", clusters=CLUSTERS)


@pytest.fixture
def slurm(slurm_tables: None) -> SlurmFixtures:
    """Row builders for the default cluster, with the standard TRES rows."""
    fixtures = SlurmFixtures()
    fixtures.tres()
    return fixtures
