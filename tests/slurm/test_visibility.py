"""Who may see which jobs: owner, teammate, outsider and staff, with query-count guards."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.db.models.sql.compiler import SQLCompiler
from slurm_factories import SlurmFixtures

from slurm.models import Job
from slurm.visibility import (
    accounts_of,
    is_account_member,
    jobs_of_account,
    jobs_of_user,
    jobs_visible_to,
)

pytestmark = [pytest.mark.django_db(databases=["default", "slurm"])]


@pytest.fixture
def tree(slurm: SlurmFixtures) -> dict[str, Any]:
    """alice: physics (default) and def-alice; bob: chem (default), physics, and a deleted biology row;
    carol: chem only. Each has jobs in each of their accounts."""
    for account in ("physics", "chem", "biology", "def-alice"):
        slurm.account(account)
    ids = {
        "alice": slurm.user("alice", ["physics", "def-alice"]),
        "bob": slurm.user("bob", ["chem", "physics", "biology"], deleted=["biology"]),
        "carol": slurm.user("carol", ["chem"]),
    }
    jobs = {
        "alice/physics": slurm.job("alice", "physics"),
        "alice/def-alice": slurm.job("alice", "def-alice"),
        "bob/chem": slurm.job("bob", "chem"),
        "bob/physics": slurm.job("bob", "physics"),
        "bob/biology (deleted association)": slurm.job("bob", "biology"),
        "carol/chem": slurm.job("carol", "chem"),
    }
    slurm.job("alice", "physics", deleted=1)  # a soft-deleted record is nobody's
    return {"ids": ids, "jobs": jobs}


@pytest.fixture
def people(db: None) -> dict[str, User]:
    return {
        "alice": User.objects.create(username="alice"),
        "bob": User.objects.create(username="bob"),
        "carol": User.objects.create(username="carol"),
        "outsider": User.objects.create(username="outsider"),
        "admin": User.objects.create(username="admin", is_staff=True),
    }


def visible(user: Any, scope: str = "own") -> set[str]:
    return {f"{job.id_assoc}:{job.account}:{job.id_job}" for job in jobs_visible_to(user, scope=scope)}  # type: ignore[arg-type]


def keys(tree: dict[str, Any], *names: str) -> set[str]:
    jobs: dict[str, Job] = tree["jobs"]
    return {f"{jobs[name].id_assoc}:{jobs[name].account}:{jobs[name].id_job}" for name in names}


def test_owner_sees_own_jobs_including_deleted_associations(tree: dict[str, Any], people: dict[str, User]) -> None:
    assert visible(people["alice"]) == keys(tree, "alice/physics", "alice/def-alice")
    assert visible(people["bob"]) == keys(tree, "bob/chem", "bob/physics", "bob/biology (deleted association)")


def test_account_member_sees_the_accounts_jobs(tree: dict[str, Any], people: dict[str, User]) -> None:
    # bob is in physics and chem: he sees alice's physics job, not her def-alice one.
    assert visible(people["bob"], "accounts") == keys(
        tree, "alice/physics", "bob/chem", "bob/physics", "bob/biology (deleted association)", "carol/chem"
    )
    assert visible(people["carol"], "accounts") == keys(tree, "bob/chem", "carol/chem")


def test_outsider_sees_nothing(tree: dict[str, Any], people: dict[str, User]) -> None:
    assert visible(people["outsider"]) == set()
    assert visible(people["outsider"], "accounts") == set()
    assert visible(AnonymousUser()) == set()
    job = tree["jobs"]["alice/physics"]
    queryset = jobs_visible_to(people["carol"], scope="accounts")
    with pytest.raises(queryset.model.DoesNotExist):  # what get_object_or_404 turns into a 404
        queryset.get(job_db_inx=job.job_db_inx)


def test_staff_sees_every_job_but_deleted_records(tree: dict[str, Any], people: dict[str, User]) -> None:
    assert visible(people["admin"]) == keys(tree, *tree["jobs"])


def test_unknown_scope_is_refused(people: dict[str, User]) -> None:
    with pytest.raises(ValueError, match="scope"):
        jobs_visible_to(people["alice"], scope="everything")  # type: ignore[arg-type]


def test_association_helpers(tree: dict[str, Any]) -> None:
    assert accounts_of("bob") == ["chem", "physics"]  # live memberships only
    assert is_account_member("bob", "physics")
    assert not is_account_member("bob", "biology")
    assert not is_account_member("carol", "physics")


def test_accounts_are_read_live_with_the_statement_compiled_once(tree: dict[str, Any], slurm: SlurmFixtures) -> None:
    assert accounts_of("bob") == ["chem", "physics"]
    slurm.account("maths")
    slurm.user("bob", ["maths"])
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled again")):
        assert accounts_of("bob") == ["chem", "maths", "physics"]  # the new membership, at once


def test_jobs_of_user_and_account(tree: dict[str, Any]) -> None:
    assert {job.job_db_inx for job in jobs_of_user("carol")} == {tree["jobs"]["carol/chem"].job_db_inx}
    assert {job.account for job in jobs_of_account("physics")} == {"physics"}
    assert jobs_of_account("physics").count() == 2


@pytest.mark.parametrize("n_jobs", [1, 3, 12])
@pytest.mark.parametrize(("username", "scope"), [("alice", "own"), ("bob", "accounts"), ("admin", "own")])
def test_listing_costs_one_query_whatever_the_size(
    slurm: SlurmFixtures,
    people: dict[str, User],
    django_assert_max_num_queries: Any,
    n_jobs: int,
    username: str,
    scope: str,
) -> None:
    slurm.account("physics")
    slurm.user("alice", ["physics"])
    slurm.user("bob", ["physics"])
    for _ in range(n_jobs):
        slurm.job("alice", "physics")
    with django_assert_max_num_queries(1, using="slurm"), django_assert_max_num_queries(0):
        jobs = list(jobs_visible_to(people[username], scope=scope))  # type: ignore[arg-type]
    assert len(jobs) == n_jobs


def test_membership_checks_are_one_query(tree: dict[str, Any], django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1, using="slurm"):
        assert is_account_member("bob", "physics")
    with django_assert_num_queries(1, using="slurm"):
        accounts_of("bob")
