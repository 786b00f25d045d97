"""The staff search: one query over portal users, the directory (with LDAP), Slurm users and accounts,
job ids (``1234``, ``1234_7``, ``1240+1``) and whatever other apps register (notes, tickets).

Each source is asked for at most PER_SOURCE hits in one or two indexed queries, and fails on its own:
the others still answer, and the page names the one that did not. Hits about the same user from
several sources are merged into one. Results are ranked (exact, prefix, anywhere; then by kind) and
capped at MAX_RESULTS. Nothing here builds HTML: pages escape, the JSON endpoint returns data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import ldap
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.db.models import Q
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from ldap.filter import escape_filter_chars

from slurm.ids import parse_job_ref
from slurm.lookup import records_of
from slurm.models import Account, SlurmUser, cluster_models
from userportal.directory import bound, describe, text
from userportal.errors import DataSourceError
from userportal.search import SearchHit, rank, search_providers
from userportal.sources import DownMemory

logger = logging.getLogger(__name__)

MIN_LENGTH = 2
MAX_LENGTH = 100
PER_SOURCE = 10
MAX_RESULTS = 50
KIND_ORDER = {"job": 0, "user": 1, "account": 2, "note": 3, "ticket": 4}
DIRECTORY_DOWN = DownMemory("search:ldap-down")


class QueryError(ValueError):
    pass


@dataclass
class Outcome:
    query: str
    hits: list[SearchHit] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    truncated: bool = False


def _enabled(module: str) -> bool:
    return module in settings.PORTAL_MODULES


def user_url(username: str) -> str:
    if _enabled("usersummary"):
        return reverse("usersummary:user", kwargs={"username": username})
    if _enabled("jobstats"):
        return reverse("jobstats:user", kwargs={"username": username})
    return ""


def account_url(account: str) -> str:
    return reverse("accountstats:account", kwargs={"account": account}) if _enabled("accountstats") else ""


# --- the sources ----------------------------------------------------------------------------------
def portal_users(query: str, cluster: str, limit: int) -> list[SearchHit]:
    match = (
        Q(username__icontains=query)
        | Q(email__icontains=query)
        | Q(first_name__icontains=query)
        | Q(last_name__icontains=query)
    )
    hits = []
    for user in get_user_model().objects.filter(match).order_by("username")[:limit]:
        name = " ".join(part for part in (user.first_name, user.last_name) if part)
        score = max(rank(user.username, query), rank(user.email, query), rank(name, query))
        hits.append(
            SearchHit(
                "user", user.username, user_url(user.username), ", ".join(p for p in (name, user.email) if p), score
            )
        )
    return hits


def slurm_users(query: str, cluster: str, limit: int) -> list[SearchHit]:
    names = SlurmUser.objects.filter(name__icontains=query, deleted=0).order_by("name").values_list("name", flat=True)
    return [SearchHit("user", name, user_url(name), "", rank(name, query)) for name in names[:limit]]


def accounts(query: str, cluster: str, limit: int) -> list[SearchHit]:
    rows = (
        Account.objects.filter(deleted=0)
        .filter(Q(name__icontains=query) | Q(description__icontains=query) | Q(organization__icontains=query))
        .order_by("name")
        .values_list("name", "description", "organization")[:limit]
    )
    return [
        SearchHit(
            "account",
            name,
            account_url(name),
            " · ".join(p for p in (description, organization) if p),
            max(rank(name, query), rank(description or "", query) // 2),
        )
        for name, description, organization in rows
    ]


def jobs(query: str, cluster: str, limit: int) -> list[SearchHit]:
    ref = parse_job_ref(query)
    if ref is None:
        return []
    records = list(
        records_of(ref, cluster).only(
            "id_job",
            "id_assoc",
            "account",
            "job_name",
            "time_submit",
            "id_array_job",
            "id_array_task",
            "het_job_id",
            "het_job_offset",
            "array_task_str",
            "array_max_tasks",
        )[:limit]
    )
    owners = (
        dict(
            cluster_models(cluster)
            .assoc.objects.filter(id_assoc__in={r.id_assoc for r in records})
            .values_list("id_assoc", "user")
        )
        if records
        else {}
    )
    hits = []
    for record in records:
        owner = owners.get(record.id_assoc, "")
        url = (
            reverse("jobstats:job", kwargs={"username": owner, "job_id": record.id_job})
            if owner and _enabled("jobstats")
            else ""
        )
        detail = " · ".join(p for p in (owner, record.account or "", record.job_name or "", cluster) if p)
        hits.append(SearchHit("job", record.display_id, url, detail, 100 if record.display_id == str(ref) else 90))
    return hits


@dataclass(frozen=True)
class Directory:
    uri: str
    bind_dn: str
    password: str
    start_tls: bool
    timeout: float
    base: str  # where the people are


def directory() -> Directory | None:
    """The sign-in directory and its people's base, when LDAP login is configured with a user search."""
    search = getattr(settings, "AUTH_LDAP_USER_SEARCH", None)
    if not settings.LDAP_ENABLED or search is None:
        return None
    return Directory(
        settings.AUTH_LDAP_SERVER_URI,
        # Set by userportal.auth.ldap_settings when LDAP sign-in is configured (not declared statically).
        str(getattr(settings, "AUTH_LDAP_BIND_DN", "")),
        str(getattr(settings, "AUTH_LDAP_BIND_PASSWORD", "")),
        bool(getattr(settings, "AUTH_LDAP_START_TLS", False)),
        settings.SEARCH_LDAP_TIMEOUT,
        str(search.base_dn),
    )


class DirectoryUnavailable(DataSourceError):
    source = "ldap"


def directory_users(query: str, cluster: str, limit: int) -> list[SearchHit]:
    server = directory()
    if server is None:
        return []
    if DIRECTORY_DOWN.recent():
        raise DirectoryUnavailable("the directory failed moments ago; not asking again yet")
    value = escape_filter_chars(query)
    search_filter = f"(&(uid=*)(|(uid=*{value}*)(cn=*{value}*)(mail=*{value}*)))"
    try:
        with bound(
            server.uri, server.bind_dn, server.password, start_tls=server.start_tls, timeout=server.timeout
        ) as conn:
            entries = conn.search_ext_s(
                server.base,
                ldap.SCOPE_SUBTREE,
                search_filter,
                ["uid", "cn", "mail"],
                timeout=server.timeout,
                sizelimit=limit,
            )
    except ldap.SIZELIMIT_EXCEEDED as exc:  # the first `limit` entries are enough
        entries = exc.args[0].get("entries", []) if exc.args and isinstance(exc.args[0], dict) else []
    except ldap.LDAPError as exc:
        DIRECTORY_DOWN.remember()
        raise DirectoryUnavailable(describe(exc)) from exc
    hits = []
    for dn, attrs in entries[:limit]:
        if dn is None:
            continue
        values: dict[str, list[str]] = {name.lower(): [text(v) for v in items] for name, items in attrs.items()}
        uid = next(iter(values.get("uid", [])), "")
        if not uid:
            continue
        cn, mail = next(iter(values.get("cn", [])), ""), next(iter(values.get("mail", [])), "")
        score = max(rank(uid, query), rank(cn, query), rank(mail, query))
        hits.append(SearchHit("user", uid, user_url(uid), ", ".join(p for p in (cn, mail) if p), score))
    return hits


@dataclass(frozen=True)
class Source:
    name: str | Promise
    search: Callable[[str, str, int], list[SearchHit]]
    label: str  # shown beside a user found there


SOURCES = (
    Source(_("the portal's users"), portal_users, "portal"),
    Source(_("the LDAP directory"), directory_users, "directory"),
    Source(_("the Slurm accounting database (users)"), slurm_users, "Slurm"),
    Source(_("the Slurm accounting database (accounts)"), accounts, ""),
    Source(_("the Slurm accounting database (jobs)"), jobs, ""),
)


def _merge_users(found: list[tuple[str, SearchHit]]) -> list[SearchHit]:
    """One hit per user name (the best score, the first detail), saying which sources know them."""
    users: dict[str, SearchHit] = {}
    sources: dict[str, list[str]] = {}
    others: list[SearchHit] = []
    for label, hit in found:
        if hit.kind != "user":
            others.append(hit)
            continue
        best = users.get(hit.label)
        users[hit.label] = (
            hit if best is None else replace(best, score=max(best.score, hit.score), detail=best.detail or hit.detail)
        )
        if label and label not in sources.setdefault(hit.label, []):
            sources[hit.label].append(label)
    merged = [
        replace(hit, detail=" · ".join(part for part in (hit.detail, ", ".join(sources.get(name, []))) if part))
        for name, hit in users.items()
    ]
    return merged + others


def clean_query(raw: Any) -> str:
    query = " ".join(str(raw or "").split())
    if len(query) > MAX_LENGTH:
        raise QueryError(_("A search is at most %(n)d characters.") % {"n": MAX_LENGTH})
    if len(query) < MIN_LENGTH and parse_job_ref(query) is None:
        raise QueryError(_("Type at least %(n)d characters, or a job id.") % {"n": MIN_LENGTH})
    return query


def search(raw: Any, *, cluster: str) -> Outcome:
    """Every source's hits for the query, merged, ranked and capped. QueryError for an empty or too long one."""
    query = clean_query(raw)
    outcome = Outcome(query)
    found: list[tuple[str, SearchHit]] = []
    sources = [*SOURCES, *(Source(p.source, p.search, "") for p in search_providers(set(settings.PORTAL_MODULES)))]
    for source in sources:
        try:
            found += [(source.label, hit) for hit in source.search(query, cluster, PER_SOURCE)]
        except (DataSourceError, DatabaseError) as exc:
            logger.warning("search: %s unavailable: %s", source.name, exc)
            outcome.unavailable.append(str(source.name))
        except Exception:  # a provider's bug must not take the search down
            logger.exception("search: %s failed", source.name)
            outcome.unavailable.append(str(source.name))
    hits = sorted(_merge_users(found), key=lambda h: (-h.score, KIND_ORDER.get(h.kind, 9), h.label))
    outcome.hits = hits[:MAX_RESULTS]
    outcome.truncated = len(hits) > MAX_RESULTS
    return outcome
