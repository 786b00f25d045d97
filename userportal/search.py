"""What the staff search finds in apps it does not import: each app registers a search provider at start-up.

The search app (``/secure/search/``) looks up users, accounts and jobs itself (portal, directory,
Slurm) and asks every provider registered here for the rest: notes registers its notes and
their tickets, priorities its requests by ticket. A provider gets the query text, the cluster and
a limit, runs a bounded number of queries, and returns :class:`SearchHit` objects; one that raises
is reported as unavailable (by its ``source``) while the other results still show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise


@dataclass(frozen=True)
class SearchHit:
    kind: str  # user, directory, account, job, note, ticket, priority
    label: str
    url: str
    detail: str = ""
    score: int = 0  # higher first: exact 100, prefix 50, anywhere 10 (see rank())


def rank(value: str, query: str) -> int:
    """How well ``value`` matches ``query`` (case-insensitive): exact 100, prefix 50, anywhere 10, else 0."""
    value, query = value.casefold(), query.casefold()
    if not query or not value:
        return 0
    if value == query:
        return 100
    if value.startswith(query):
        return 50
    return 10 if query in value else 0


@dataclass(frozen=True)
class SearchProvider:
    module: str  # the PORTAL_MODULES name whose presence enables it
    source: str | Promise  # named when it fails
    search: Callable[[str, str, int], list[SearchHit]]  # (query, cluster, limit)


_providers: dict[str, SearchProvider] = {}


def register_search_provider(provider: SearchProvider) -> None:
    """Add (or replace, by module) the search provider of a module."""
    _providers[provider.module] = provider


def unregister_search_provider(module: str) -> None:
    _providers.pop(module, None)


def search_providers(modules: set[str] | list[str]) -> list[SearchProvider]:
    return [provider for name, provider in sorted(_providers.items()) if name in modules]
