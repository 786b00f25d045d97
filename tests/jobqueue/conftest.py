from __future__ import annotations

import jobqueue_fake_executor as fake_executor
import pytest
from django.core.cache import caches

from jobqueue.tokens import issue_token


@pytest.fixture(autouse=True)
def jobqueue_settings(settings, tmp_path, monkeypatch):
    # Each test runs in a transaction that never commits: run on-commit work (the first step) at once.
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: func())
    settings.JOBQUEUE_EXECUTOR = "jobqueue_fake_executor.FakeExecutor"
    settings.JOBQUEUE_NODES = ["gpu-node-0=127.0.0.1:22", "gpu-node-1=127.0.0.1:22"]
    settings.JOBQUEUE_DIR = tmp_path / "jobqueue"
    settings.JOBQUEUE_SCAN_LLM_URL = ""
    caches["throttle"].clear()
    fake_executor.REMOTE.clear()
    fake_executor.CALLS.clear()
    fake_executor.DOWN["value"] = False
    return settings


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_user("queueadmin", password="pw-admin", is_staff=True)


@pytest.fixture
def alice_key(alice):
    return issue_token(alice)[1]


@pytest.fixture
def bob_key(bob):
    return issue_token(bob)[1]


@pytest.fixture
def admin_key(admin_user):
    return issue_token(admin_user, admin=True)[1]
