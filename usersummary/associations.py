"""A user's Slurm associations on one cluster: limits, QOS (inheritance resolved) and fair-share shares.

Everything comes from the accounting database (domain 1.12, 1.13). A user row with an empty
``qos`` inherits its parent account's QOS list, which may inherit further up; ``delta_qos``
(``+id``/``-id``) then changes the inherited list at each level, as sacctmgr resolves it. The
ancestors are read one level per query (at most ``MAX_DEPTH``), so the cost does not grow with the
number of associations. Fair share here is what the database holds: raw shares, and each row's
share of its siblings (a user's among the account's children, an account's among its parent's);
the decayed usage that makes the fair-share factor lives in slurmctld (sshare), and accountstats
shows the slurm-exporter's LevelFS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, Sum
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from slurm.decoders import TresCatalog, format_timelimit, parse_delta_qos, parse_qos_list, parse_tres
from slurm.models import Qos, Tres, cluster_models

MAX_DEPTH = 10  # account levels read above a user's associations
MAX_ASSOCIATIONS = 200
PARENT_SHARES = 0x7FFFFFFF  # SLURMDB_FS_USE_PARENT: "Fairshare=parent"

COLUMNS = (
    "id_assoc", "user", "acct", "partition", "parent_acct", "is_def", "shares", "qos", "delta_qos", "def_qos_id",
    "max_jobs", "max_jobs_accrue", "max_submit_jobs", "max_wall_pj", "max_tres_pj", "max_tres_pn",
    "max_tres_mins_pj", "max_tres_run_mins", "grp_jobs", "grp_jobs_accrue", "grp_submit_jobs", "grp_tres",
    "grp_tres_mins", "grp_tres_run_mins", "grp_wall", "priority",
)  # fmt: skip

# (column, label, kind): kind "count", "minutes" or "tres".
LIMITS: tuple[tuple[str, Promise, str], ...] = (
    ("max_jobs", _("Running jobs"), "count"),
    ("max_submit_jobs", _("Queued jobs"), "count"),
    ("max_jobs_accrue", _("Jobs accruing priority"), "count"),
    ("max_wall_pj", _("Time per job"), "minutes"),
    ("max_tres_pj", _("Resources per job"), "tres"),
    ("max_tres_pn", _("Resources per node"), "tres"),
    ("max_tres_mins_pj", _("Resource-minutes per job"), "tres"),
    ("max_tres_run_mins", _("Running resource-minutes"), "tres"),
    ("grp_jobs", _("Running jobs, all users together"), "count"),
    ("grp_submit_jobs", _("Queued jobs, all users together"), "count"),
    ("grp_jobs_accrue", _("Jobs accruing priority, all users together"), "count"),
    ("grp_tres", _("Resources, all users together"), "tres"),
    ("grp_tres_mins", _("Resource-minutes, all users together"), "tres"),
    ("grp_tres_run_mins", _("Running resource-minutes, all users together"), "tres"),
    ("grp_wall", _("Time, all users together"), "minutes"),
)


@dataclass(frozen=True)
class Limit:
    label: str | Promise
    value: str
    where: str  # "" for the user's association, else the account that sets it


@dataclass(frozen=True)
class Association:
    account: str
    partition: str
    is_default: bool
    shares: int | None  # None: "parent" (the account's shares are used)
    share_of_account: float | None  # the user's fraction of the account's children's shares
    account_shares: int | None
    account_share_of_parent: float | None
    parent: str
    qos: list[str]
    default_qos: str
    limits: list[Limit] = field(default_factory=list)
    priority: int | None = None


def _set(value: Any) -> bool:
    """NULL and negative values mean "no limit" (sacctmgr's -1)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return bool(value >= 0)


def _limit_text(value: Any, kind: str, catalog: TresCatalog) -> str:
    if kind == "minutes":
        return format_timelimit(int(value))
    if kind == "tres":
        named = catalog.named(parse_tres(value))
        return ", ".join(f"{name}={count}" for name, count in sorted(named.items()))
    return str(value)


def limits_of(row: Any, catalog: TresCatalog, where: str = "") -> list[Limit]:
    return [
        Limit(label, _limit_text(getattr(row, column), kind, catalog), where)
        for column, label, kind in LIMITS
        if _set(getattr(row, column))
    ]


def _shares(value: int | None) -> int | None:
    return None if value is None or value >= PARENT_SHARES else int(value)


def _fraction(shares: int | None, total: int | None) -> float | None:
    return shares / total if shares is not None and total else None


def resolve_qos(chain: list[Any]) -> list[int]:
    """The QOS ids of the first row of ``chain`` (itself, then its ancestors up to root), as sacctmgr resolves them."""
    ids: list[int] = []
    for row in reversed(chain):  # from the top down
        own = parse_qos_list(row.qos)
        if own:
            ids = own
        for sign, qos_id in parse_delta_qos(row.delta_qos):
            if sign == "+" and qos_id not in ids:
                ids.append(qos_id)
            elif sign == "-" and qos_id in ids:
                ids.remove(qos_id)
    return ids


def _ancestors(cluster: str, accounts: Iterable[str]) -> dict[str, Any]:
    """The live account rows of ``accounts`` and all above them, by name: one query per level."""
    assoc = cluster_models(cluster).assoc
    found: dict[str, Any] = {}
    wanted = set(accounts)
    for _level in range(MAX_DEPTH):
        wanted -= set(found)
        if not wanted:
            break
        rows = list(assoc.objects.filter(user="", deleted=0, acct__in=sorted(wanted), partition="").only(*COLUMNS))
        for row in rows:
            found[row.acct] = row
        wanted = {row.parent_acct for row in rows if row.parent_acct}
    return found


def _children_shares(cluster: str, parents: set[str]) -> dict[str, int]:
    """Σ shares of the live children (user and account rows) of each of ``parents``: two grouped queries."""
    if not parents:
        return {}
    assoc = cluster_models(cluster).assoc
    live = assoc.objects.filter(deleted=0).filter(Q(shares__lt=PARENT_SHARES) & Q(shares__gte=0))
    totals: dict[str, int] = {}
    for name, total in (
        live.filter(acct__in=sorted(parents))
        .exclude(user="")
        .values("acct")
        .annotate(t=Sum("shares"))
        .values_list("acct", "t")
    ):
        totals[name] = totals.get(name, 0) + int(total or 0)
    for name, total in (
        live.filter(user="", parent_acct__in=sorted(parents))
        .values("parent_acct")
        .annotate(t=Sum("shares"))
        .values_list("parent_acct", "t")
    ):
        totals[name] = totals.get(name, 0) + int(total or 0)
    return totals


def associations_of(username: str, cluster: str) -> list[Association]:
    """``username``'s live associations on ``cluster``, default account first: a bounded number of queries."""
    assoc = cluster_models(cluster).assoc
    rows = list(
        assoc.objects.filter(user=username, deleted=0)
        .only(*COLUMNS)
        .order_by("-is_def", "acct", "partition")[:MAX_ASSOCIATIONS]
    )
    if not rows:
        return []
    catalog = Tres.catalog()
    accounts = _ancestors(cluster, {row.acct for row in rows})
    parents = {row.acct for row in rows} | {accounts[a].parent_acct for a in accounts if accounts[a].parent_acct}
    totals = _children_shares(cluster, parents)
    chains = {row.id_assoc: [row, *_chain(row.acct, accounts)] for row in rows}
    qos_ids = {qos_id for chain in chains.values() for qos_id in resolve_qos(chain)}
    qos_ids |= {r.def_qos_id for chain in chains.values() for r in chain if r.def_qos_id}
    # Ids of QOS removed since (hard-deleted rows, or deleted=1) are dropped, as sacctmgr does.
    names = dict(Qos.objects.filter(id__in=sorted(qos_ids), deleted=0).values_list("id", "name")) if qos_ids else {}
    result = []
    for row in rows:
        chain = chains[row.id_assoc]
        account = accounts.get(row.acct)
        default_qos = next((r.def_qos_id for r in chain if r.def_qos_id), None)
        limits = limits_of(row, catalog)
        for ancestor in chain[1:]:
            limits += limits_of(ancestor, catalog, where=ancestor.acct)
        account_shares = _shares(account.shares) if account is not None else None
        result.append(
            Association(
                account=row.acct,
                partition=row.partition or "",
                is_default=bool(row.is_def),
                shares=_shares(row.shares),
                share_of_account=_fraction(_shares(row.shares), totals.get(row.acct)),
                account_shares=account_shares,
                account_share_of_parent=_fraction(account_shares, totals.get(account.parent_acct))
                if account is not None and account.parent_acct
                else None,
                parent=account.parent_acct if account is not None else "",
                qos=sorted(names[i] for i in resolve_qos(chain) if i in names),
                default_qos=names.get(default_qos, "") if default_qos else "",
                limits=limits,
                priority=row.priority if row.priority is not None and row.priority < PARENT_SHARES else None,
            )
        )
    return result


def _chain(account: str, accounts: dict[str, Any]) -> list[Any]:
    """The account row of ``account`` and its ancestors' rows, nearest first."""
    chain = []
    seen: set[str] = set()
    while account and account in accounts and account not in seen:
        seen.add(account)
        row = accounts[account]
        chain.append(row)
        account = row.parent_acct
    return chain
