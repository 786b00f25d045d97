"""The one read-only router class, as the Slurm and the Robinhood databases use it."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User
from django.db import router
from django.db.models import Model

from quotas.models import AcctStat, Quota
from quotas.router import ReadOnlyRobinhoodDatabase, RobinhoodRouter
from slurm.models import Qos, Tres
from slurm.router import ReadOnlySlurmDatabase, SlurmRouter
from userportal.dbrouter import ReadOnlyDatabase, ReadOnlyRouter

ROUTERS = [
    pytest.param(SlurmRouter, Qos, ReadOnlySlurmDatabase, id="slurm"),
    pytest.param(RobinhoodRouter, AcctStat, ReadOnlyRobinhoodDatabase, id="robinhood"),
]


@pytest.mark.parametrize(("router_class", "model", "error"), ROUTERS)
def test_reads_go_to_the_alias_and_writes_raise_its_own_error(
    router_class: type[ReadOnlyRouter], model: type[Model], error: type[ReadOnlyDatabase]
) -> None:
    routed = router_class()
    assert routed.db_for_read(model) == router_class.alias
    assert router.db_for_read(model) == router_class.alias  # as installed in settings
    with pytest.raises(error, match="read-only") as info:
        routed.db_for_write(model)
    assert isinstance(info.value, ReadOnlyDatabase)
    assert f"{router_class.__module__}.allow_writes()" in str(info.value)


@pytest.mark.parametrize(("router_class", "model", "error"), ROUTERS)
def test_allow_writes_opens_this_thread_only(
    router_class: type[ReadOnlyRouter], model: type[Model], error: type[ReadOnlyDatabase]
) -> None:
    routed = router_class()
    seen: list[str] = []

    def other_thread() -> None:
        try:
            routed.db_for_write(model)
            seen.append("written")
        except ReadOnlyDatabase as exc:
            seen.append(type(exc).__name__)

    with router_class.allow_writes():
        assert router_class.writes_allowed()
        assert routed.db_for_write(model) == router_class.alias
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen == [error.__name__]
    assert not router_class.writes_allowed()
    with pytest.raises(error):
        routed.db_for_write(model)


def test_each_database_has_its_own_switch() -> None:
    with SlurmRouter.allow_writes():
        assert SlurmRouter().db_for_write(Tres) == "slurm"
        with pytest.raises(ReadOnlyRobinhoodDatabase):
            RobinhoodRouter().db_for_write(AcctStat)
    with RobinhoodRouter.allow_writes():
        assert RobinhoodRouter().db_for_write(AcctStat) == "robinhood"
        with pytest.raises(ReadOnlySlurmDatabase):
            SlurmRouter().db_for_write(Tres)


def test_the_portals_own_models_are_left_to_the_default_database() -> None:
    for routed in (SlurmRouter(), RobinhoodRouter()):
        for model in (User, Quota):
            assert routed.db_for_read(model) is None
            assert routed.db_for_write(model) is None
            assert routed.allow_migrate("default", model._meta.app_label, model=model) is None


def test_the_robinhood_alias_and_its_models_are_never_migrated() -> None:
    routed = RobinhoodRouter()
    assert routed.allow_migrate("robinhood", "quotas") is False
    assert routed.allow_migrate("default", "quotas", model_name="acctstat", model=AcctStat) is False
    assert router.allow_migrate_model("default", AcctStat) is False
    assert router.allow_migrate_model("default", Quota) is True


def test_relations_stay_inside_one_database() -> None:
    routed = RobinhoodRouter()
    stat = AcctStat(uid="a", gid="b", type="file")
    assert routed.allow_relation(stat, AcctStat(uid="c", gid="d", type="dir")) is True
    assert routed.allow_relation(stat, User(username="x")) is False
    assert routed.allow_relation(User(username="x"), User(username="y")) is None


def test_a_router_names_its_models_one_way() -> None:
    with pytest.raises(TypeError, match="exactly one"):
        type("Both", (ReadOnlyRouter,), {"alias": "x", "app_label": "x", "model_flag": "x_model"})
    with pytest.raises(TypeError, match="exactly one"):
        type("Neither", (ReadOnlyRouter,), {"alias": "x"})
