"""Fixtures for the priorities tests: the personas' cluster, a fake sacctmgr, and request factories."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from priorities.models import PriorityMember, PriorityRequest, Status
from slurm import sacctmgr


class FakeSacctmgr:
    """Records the operations instead of running sacctmgr; users in ``lost`` have no association (sacctmgr: "Nothing modified")."""

    def __init__(self):
        self.calls = []
        self.lost = set()
        self.failing_deletes = set()

    def add_qos(self, spec):
        self.calls.append(("add_qos", spec.name, spec.grp_tres, spec.max_wall, spec.priority))

    def delete_qos(self, name):
        self.calls.append(("delete_qos", name))
        if name in self.failing_deletes:
            raise sacctmgr.SacctmgrError(f"sacctmgr -i -P delete qos {name} exited 1: slurmdbd is busy")

    def add_user_qos(self, user, account, qos):
        self.calls.append(("add_user_qos", user, account, qos))
        if user in self.lost:
            raise sacctmgr.SacctmgrError(f"{user} has no association with account {account}: cannot add QOS {qos}")

    def remove_user_qos(self, user, account, qos):
        self.calls.append(("remove_user_qos", user, account, qos))


@pytest.fixture
def fake_sacctmgr(monkeypatch):
    fake = FakeSacctmgr()
    monkeypatch.setattr(sacctmgr, "get_client", lambda: fake)
    return fake


@pytest.fixture
def automatic(settings):
    settings.PRIORITIES_APPLY_MODE = "automatic"


@pytest.fixture
def make_priority(personas):
    def make(requester=None, *, status=Status.PENDING, start=None, days=3, members=(), **fields):
        values = {
            "requester": requester or personas.owner,
            "cluster": personas.slurm.cluster,
            "account": "def-owner",
            "gpu_type": "a100",
            "gpu_count": 1,
            "start": start or timezone.now() + timedelta(days=1),
            "duration_days": days,
            "justification": "training a model",
            "ticket": "1234",
            "status": status,
            **fields,
        }
        priority = PriorityRequest.objects.create(**values)
        for name in members:
            PriorityMember.objects.create(request=priority, username=name)
        return priority

    return make
