"""Fixtures for the slurm app's tests: row builders on the tables of both test clusters (slurm_tables)."""

from __future__ import annotations

import pytest
from slurm_factories import SlurmFixtures


@pytest.fixture
def slurm(slurm_tables: None) -> SlurmFixtures:
    """Row builders for the default cluster, with the standard TRES rows."""
    fixtures = SlurmFixtures()
    fixtures.tres()
    return fixtures
