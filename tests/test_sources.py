"""The memory of a dead data source (userportal.sources), shared by Prometheus and LDAP."""

from __future__ import annotations

import time

import pytest

from userportal.sources import DOWN_SECONDS, DownMemory


@pytest.fixture
def clock(monkeypatch):
    """time.time(), which the cache reads for expiry, moved by hand."""
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def test_a_failure_is_remembered_for_its_seconds_then_forgotten(clock):
    down = DownMemory("test:source-down")
    assert not down.recent()
    down.remember()
    assert down.recent()
    clock[0] += DOWN_SECONDS - 1
    assert down.recent()
    clock[0] += 2
    assert not down.recent()


def test_each_key_is_its_own_source():
    DownMemory("test:ldap-down:a", seconds=60).remember()
    assert DownMemory("test:ldap-down:a").recent()
    assert not DownMemory("test:ldap-down:b").recent()
