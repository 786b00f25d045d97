"""Fixtures for the extensions tests: a fake scontrol at the runner boundary (slurm.commands.run_command)."""

from __future__ import annotations

import pytest
from extensions_helpers import FakeScontrol

from slurm import scontrol


@pytest.fixture
def fake_scontrol(monkeypatch, settings):
    settings.SLURM_SCONTROL = "scontrol"
    settings.EXTENSIONS_SLURM_OPERATOR = "slurm"
    fake = FakeScontrol()
    monkeypatch.setattr(scontrol, "run_command", fake.run)
    return fake
