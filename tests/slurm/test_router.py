"""The slurm database is read-only: every write path raises outside allow_writes()."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import router
from django.db.models import Model
from django.db.utils import DatabaseError
from slurm_factories import SlurmFixtures

from slurm.models import Job, Qos, cluster_models
from slurm.router import ReadOnlySlurmDatabase, SlurmRouter, allow_writes, writes_allowed

pytestmark = [pytest.mark.django_db(databases=["default", "slurm"])]


@pytest.fixture
def job(slurm: SlurmFixtures) -> Job:
    slurm.account("def-owner")
    slurm.user("owner", ["def-owner"])
    return slurm.job("owner", "def-owner")


def _jobs() -> Any:
    return cluster_models("testcluster").job.objects


WRITES: dict[str, Callable[[Job], object]] = {
    "save": lambda job: job.save(),
    "save(using=slurm)": lambda job: job.save(using="slurm"),
    "delete": lambda job: job.delete(),
    "QuerySet.update": lambda job: _jobs().filter(pk=job.pk).update(state=5),
    "QuerySet.update via using()": lambda job: _jobs().using("slurm").filter(pk=job.pk).update(state=5),
    "QuerySet.delete": lambda job: _jobs().filter(pk=job.pk).delete(),
    "QuerySet.delete via using()": lambda job: _jobs().using("slurm").all().delete(),
    "create": lambda job: _jobs().create(
        id_job=99, id_assoc=1, id_user=1, id_group=1, cpus_req=1, state=0, job_name="x", partition="cpu"
    ),
    "bulk_create": lambda job: _jobs().bulk_create(
        [type(job)(id_job=98, id_assoc=1, id_user=1, id_group=1, cpus_req=1, state=0)]
    ),
    "bulk_update": lambda job: _jobs().bulk_update([job], ["state"]),
    "get_or_create (existing row)": lambda job: _jobs().get_or_create(job_db_inx=job.job_db_inx),
    "update_or_create": lambda job: _jobs().update_or_create(job_db_inx=job.job_db_inx, defaults={"state": 5}),
    "select_for_update": lambda job: list(_jobs().select_for_update().filter(pk=job.pk)),
    "global model save": lambda job: Qos(name="sneaky", creation_time=0).save(),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_write_path_raises(job: Job, write: Callable[[Job], object]) -> None:
    with pytest.raises(ReadOnlySlurmDatabase):
        write(job)
    stored = _jobs().get(pk=job.pk)
    assert stored.state == job.state


def test_read_only_error_is_a_database_error(job: Job) -> None:
    with pytest.raises(DatabaseError, match="read-only"):
        job.save()


def test_reads_go_to_the_slurm_database(job: Job) -> None:
    assert router.db_for_read(type(job)) == "slurm"
    assert _jobs().filter(id_assoc=job.id_assoc).count() == 1
    assert _jobs().get(pk=job.pk)._state.db == "slurm"


def test_allow_writes_permits_and_then_closes(job: Job) -> None:
    with allow_writes():
        _jobs().filter(pk=job.pk).update(state=5)
    assert _jobs().get(pk=job.pk).state == 5
    assert not writes_allowed()
    with pytest.raises(ReadOnlySlurmDatabase):
        _jobs().filter(pk=job.pk).update(state=3)


def test_allow_writes_does_not_leak_to_other_threads() -> None:
    seen: list[bool] = []
    with allow_writes():
        thread = threading.Thread(target=lambda: seen.append(writes_allowed()))
        thread.start()
        thread.join()
        assert writes_allowed()
    assert seen == [False]


def test_portal_models_are_untouched() -> None:
    slurm_router = SlurmRouter()
    assert slurm_router.db_for_read(User) is None
    assert slurm_router.db_for_write(User) is None
    User.objects.create(username="someone")  # the default database stays writable


def test_never_migrated() -> None:
    slurm_router = SlurmRouter()
    assert slurm_router.allow_migrate("slurm", "auth") is False
    assert slurm_router.allow_migrate("default", "slurm", model_name="qos") is False
    assert slurm_router.allow_migrate("slurm", "slurm") is False
    assert slurm_router.allow_migrate("default", "auth") is None
    assert router.allow_migrate_model("default", Qos) is False


def test_relations_only_within_the_slurm_app(job: Job) -> None:
    slurm_router = SlurmRouter()
    qos = Qos(name="normal", creation_time=0)
    assert slurm_router.allow_relation(job, qos) is True
    assert slurm_router.allow_relation(job, User(username="x")) is False
    assert slurm_router.allow_relation(User(username="x"), User(username="y")) is None


def _plain(job: Job) -> Any:
    # A stock QuerySet, without SlurmQuerySet's own checks: what stops these is the router alone.
    from django.db.models import QuerySet

    return QuerySet(model=type(job))


ROUTER_ONLY: dict[str, Callable[[Job], object]] = {
    "Model.save": lambda job: Model.save(job),
    "Model.delete": lambda job: Model.delete(job),
    "QuerySet.update": lambda job: _plain(job).filter(pk=job.pk).update(state=5),
    "QuerySet.delete": lambda job: _plain(job).filter(pk=job.pk).delete(),
    "QuerySet.create": lambda job: _plain(job).create(
        id_job=99, id_assoc=1, id_user=1, id_group=1, cpus_req=1, state=0
    ),
    "QuerySet.bulk_create": lambda job: _plain(job).bulk_create(
        [type(job)(id_job=98, id_assoc=1, id_user=1, id_group=1, cpus_req=1, state=0)]
    ),
    "QuerySet.bulk_update": lambda job: _plain(job).bulk_update([job], ["state"]),
    "QuerySet.get_or_create": lambda job: _plain(job).get_or_create(job_db_inx=job.job_db_inx),
    "QuerySet.update_or_create": lambda job: _plain(job).update_or_create(
        job_db_inx=job.job_db_inx, defaults={"state": 5}
    ),
}


@pytest.mark.parametrize("write", ROUTER_ONLY.values(), ids=ROUTER_ONLY.keys())
def test_router_alone_refuses_each_write(job: Job, write: Callable[[Job], object]) -> None:
    with pytest.raises(ReadOnlySlurmDatabase):
        write(job)
