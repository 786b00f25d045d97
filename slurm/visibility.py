"""The one answer to "which jobs may this user see", for every page, API, export and task.

Access follows Slurm associations, not uids: a job's ``id_assoc`` names the user association
it ran under, and ``assoc_table.user`` is the Slurm user name, which is the portal username.
Deleted association rows are kept in the id lists because old jobs keep their old
``id_assoc``; membership of an account (what a user may see *now*) uses live rows only.

Every queryset here runs as one SQL statement: the association ids are a subquery in the
same (slurm) database, never a Python loop, so listings cost the same for 1 or 10,000 jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from django.core.cache import cache
from django.db import connections
from django.db.models import F, Q, QuerySet

from slurm.models import Assoc, Job, SlurmQuerySet, cluster_models, default_cluster

Scope = Literal["own", "accounts"]
SCOPES: tuple[Scope, ...] = ("own", "accounts")


class PortalUser(Protocol):
    """What the checks need from a user: django.contrib.auth's User and AnonymousUser both fit."""

    @property
    def username(self) -> str: ...

    @property
    def is_staff(self) -> bool: ...

    @property
    def is_authenticated(self) -> bool: ...


def _cluster(cluster: str | None) -> str:
    return cluster if cluster is not None else default_cluster()


def _user_assoc_ids(username: str, cluster: str | None) -> QuerySet[Assoc, int]:
    assoc = cluster_models(_cluster(cluster)).assoc
    # Deleted rows included: a job run under an association later removed is still the user's.
    return assoc.objects.filter(user=username).exclude(user="").values_list("id_assoc", flat=True)


def _live_accounts(username: str, cluster: str | None) -> QuerySet[Assoc, str]:
    assoc = cluster_models(_cluster(cluster)).assoc
    return assoc.objects.filter(user=username, deleted=0).exclude(user="").values_list("acct", flat=True)


def _account_user_assoc_ids(accounts: QuerySet[Assoc, str] | list[str], cluster: str | None) -> QuerySet[Assoc, int]:
    assoc = cluster_models(_cluster(cluster)).assoc
    # User rows of the accounts, deleted ones included (a former member's jobs stay visible to the group).
    return assoc.objects.filter(acct__in=accounts).exclude(user="").values_list("id_assoc", flat=True)


# accounts_of()'s statement by (cluster, user name): the ORM takes longer to build and compile it
# than the database to answer it. Only the SQL is kept; the rows are read on every call.
_ACCOUNTS_SQL: dict[tuple[str, str], tuple[str, str, tuple[Any, ...]]] = {}
ACCOUNTS_SQL_SIZE = 10_000


def accounts_of(username: str, cluster: str | None = None) -> list[str]:
    """Accounts ``username`` belongs to now (live user associations), sorted."""
    key = (_cluster(cluster), username)
    statement = _ACCOUNTS_SQL.get(key)
    if statement is None:
        accounts = _live_accounts(username, cluster)
        sql, params = accounts.query.get_compiler(using=accounts.db).as_sql()
        if len(_ACCOUNTS_SQL) >= ACCOUNTS_SQL_SIZE:
            _ACCOUNTS_SQL.clear()
        statement = _ACCOUNTS_SQL[key] = (accounts.db, sql, tuple(params))
    db, sql, params = statement
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        return sorted({account for (account,) in cursor.fetchall()})


def is_account_member(username: str, account: str, cluster: str | None = None) -> bool:
    """Whether ``username`` has a live association with ``account``."""
    return _live_accounts(username, cluster).filter(acct=account).exists()


def _jobs(cluster: str | None) -> SlurmQuerySet[Job]:
    return cluster_models(_cluster(cluster)).job.objects.filter(deleted=0)


def jobs_of_user(username: str, cluster: str | None = None) -> SlurmQuerySet[Job]:
    """Jobs run under any of ``username``'s associations (no permission check: callers decide)."""
    return _jobs(cluster).filter(id_assoc__in=_user_assoc_ids(username, cluster))


UID_CACHE_SECONDS = 86400
NO_ASSOCIATION = -1  # assoc_table.id_assoc is unsigned


def uid_of(username: str, cluster: str | None = None) -> int | None:
    """The uid ``username``'s jobs run as (``job_table.id_user``), or None while they have no job; cached.

    Slurm files a job under the association of the submitting uid's user name, so every job of
    ``jobs_of_user`` carries this uid. With it, per-user queries can also filter on ``id_user``
    and MariaDB can use the job table's own (id_user, time_start, time_end) and (id_user,
    time_end, time_eligible) indexes (sacct's) instead of reading all the user's rows through
    ``id_assoc``. One indexed single-row query on a cache miss.
    """
    stood = _STAND_IN_UIDS.get(username)
    if stood is not None:
        return stood
    key = f"slurm:uid:{_cluster(cluster)}:{username}"
    memo = _UIDS.get(key)
    if memo is not None and memo[1] > time.monotonic():
        return memo[0]
    found = cache.get(key)
    if found is not None:
        uid: int | None = int(found)
    else:
        uid = next(iter(jobs_of_user(username, cluster).order_by().values_list("id_user", flat=True)[:1]), None)
        if uid is not None:
            cache.set(key, int(uid), UID_CACHE_SECONDS)
    if uid is not None:
        if len(_UIDS) >= UID_MEMO_SIZE:
            _UIDS.clear()
        _UIDS[key] = (int(uid), time.monotonic() + UID_MEMO_SECONDS)
    return uid


# The uid of a stand-in name: a statement made once for every user (jobstats.services.read_shared)
# is built for a name no user has, whose uid must be another stand-in, not looked up.
_STAND_IN_UIDS: dict[str, int] = {}


def stand_in_uid(username: str, uid: int) -> None:
    """From now on uid_of(``username``) is ``uid`` (``username``: a stand-in no Slurm user is named)."""
    _STAND_IN_UIDS[username] = uid


# uid_of()'s answers kept in the process too (a request asked the shared cache two or three times).
UID_MEMO_SECONDS = 300
UID_MEMO_SIZE = 10_000
_UIDS: dict[str, tuple[int, float]] = {}


def forget_uids() -> None:
    """Empty the process's memos of uid_of() and assoc_users() (tests, whose databases reuse names and ids)."""
    _UIDS.clear()
    _ASSOC_USERS.clear()


# assoc_users()'s answers: slurmdbd never renames an association row (a removed one is flagged
# deleted, or dropped when it has no job), so an id's user is kept for an hour in the process.
ASSOC_MEMO_SECONDS = 3600
ASSOC_MEMO_SIZE = 100_000
_ASSOC_USERS: dict[tuple[str, int], tuple[str, float]] = {}


def assoc_users(ids: Iterable[int], cluster: str | None = None) -> dict[int, str]:
    """The user name of each association id (an account's row, or an id not in the table: ""), as
    ``assoc_table.user``; the ids not seen in the last hour in one query."""
    cluster = _cluster(cluster)
    now = time.monotonic()
    found: dict[int, str] = {}
    missing = []
    for id_assoc in set(ids):
        memo = _ASSOC_USERS.get((cluster, id_assoc))
        if memo is not None and memo[1] > now:
            found[id_assoc] = memo[0]
        else:
            missing.append(id_assoc)
    if missing:
        rows = cluster_models(cluster).assoc.objects.filter(id_assoc__in=missing).values_list("id_assoc", "user")
        if len(_ASSOC_USERS) + len(missing) > ASSOC_MEMO_SIZE:
            _ASSOC_USERS.clear()
        for id_assoc, user in rows:
            found[id_assoc] = user or ""
            _ASSOC_USERS[(cluster, id_assoc)] = (found[id_assoc], now + ASSOC_MEMO_SECONDS)
    return found


def jobs_of_user_by_uid(username: str, cluster: str | None = None) -> SlurmQuerySet[Job]:
    """The rows of jobs_of_user(), for listings: found through the job table's (id_user, ...) indexes.

    Both conditions are kept, so the rows are the same; ``id_assoc + 0`` stops MariaDB from
    driving the query through the ``association`` index, which would read every row of the
    user (50,000 for a heavy user) to sort them or to find the few running ones.
    """
    uid = uid_of(username, cluster)
    if uid is None:
        return jobs_of_user(username, cluster)
    jobs: SlurmQuerySet[Job] = _jobs(cluster).filter(id_user=uid)
    # "OR ... = -1" (no association has that id) keeps MariaDB from turning the IN into a
    # semi-join: for a user with few jobs it would start from assoc_table, read all the rows and
    # sort them (3.7 ms for 386 jobs); so every user's page is read along sacct_def (0.6 ms).
    return jobs.alias(assoc_unindexed=F("id_assoc") + 0).filter(  # type: ignore[return-value]
        Q(assoc_unindexed__in=_user_assoc_ids(username, cluster)) | Q(assoc_unindexed=NO_ASSOCIATION)
    )


def jobs_of_account(account: str, cluster: str | None = None) -> SlurmQuerySet[Job]:
    """Jobs run under any user association of ``account`` (no permission check: callers decide)."""
    return _jobs(cluster).filter(id_assoc__in=_account_user_assoc_ids([account], cluster))


def jobs_visible_to(user: PortalUser, cluster: str | None = None, *, scope: Scope = "own") -> SlurmQuerySet[Job]:
    """The jobs ``user`` may see on ``cluster``.

    Staff see every job. Others see the jobs of their own associations (``scope="own"``), or
    with ``scope="accounts"`` the jobs of every user of the accounts they belong to now.
    Anonymous users see nothing. One SQL statement, whatever the scope.
    """
    if scope not in SCOPES:
        raise ValueError(f"Unknown scope {scope!r}; expected one of {SCOPES}.")
    jobs = _jobs(cluster)
    if not user.is_authenticated or not user.username:
        return jobs.none()
    if user.is_staff:
        return jobs
    own = Q(id_assoc__in=_user_assoc_ids(user.username, cluster))
    if scope == "own":
        return jobs.filter(own)
    # Own jobs stay visible after leaving an account, so "accounts" is a superset of "own".
    accounts = _account_user_assoc_ids(_live_accounts(user.username, cluster), cluster)
    return jobs.filter(own | Q(id_assoc__in=accounts))
