"""cloudstats fixtures: a Prometheus answering like the stack's libvirt exporter (tests/prom_stub.py)."""

from __future__ import annotations

import pytest
from cloudstats_fixtures import IDLE, UP, WEB


@pytest.fixture
def cloud(prom):
    """The stub Prometheus with a healthy exporter and def-owner's instances (vCPUs, memory, CPU now)."""
    prom.samples = {
        "health_up": list(UP),
        "health_libvirt": [({"job": "libvirt", "instance": "127.0.0.1:9177"}, 1.0)],
        "seen": [(WEB, 2.0), (IDLE, 1.0)],
        "now": [({"uuid": WEB["uuid"]}, 2.0), ({"uuid": IDLE["uuid"]}, 1.0)],
        "memory": [(WEB, 128 * 1024**2), (IDLE, 96 * 1024**2)],
        "cpu": [({"uuid": WEB["uuid"]}, 0.1), ({"uuid": IDLE["uuid"]}, 0.003)],
        "instance": [({}, 1.0)],
    }
    return prom
