"""Group quotas from LDAP attributes (QUOTAS_SOURCE=ldap).

A page costs one search: the group filter of each of its groups joined with ``|`` (the alert
task, which asks for every group, searches in chunks of MAX_GROUPS_PER_SEARCH). Answers are
cached for QUOTAS_LDAP_CACHE_SECONDS, and a failure is remembered for a short while
(userportal.sources), so while the directory is down the next pages show their notice at once
instead of waiting for the timeout again. Values come back as the directory holds them ("10T", "1000000"): quotas.limits turns
them into Limits, so the QUOTAS_DEFAULT_* fallbacks always apply at read time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import ldap
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy
from ldap.filter import escape_filter_chars

from userportal.directory import bound, describe, text
from userportal.errors import DataSourceError
from userportal.sources import DownMemory

logger = logging.getLogger(__name__)

FIELDS = ("bytes", "inodes", "nearline_bytes")
MAX_GROUPS_PER_SEARCH = 200  # keeps a filter well under the server's size and length limits

RawQuota = dict[str, str]  # field -> the attribute's value, for the attributes the entry has


class LdapQuotasUnavailable(DataSourceError):
    source = "ldap"
    user_message = gettext_lazy("Storage quotas are unavailable right now: the LDAP directory is not answering.")


@dataclass(frozen=True)
class LdapQuotaConfig:
    uri: str
    bind_dn: str
    bind_password: str
    start_tls: bool
    timeout: float
    base: str
    filter_template: str
    name_attr: str
    attrs: tuple[tuple[str, str], ...]  # (field, attribute) for the fields read from the directory

    @classmethod
    def from_settings(cls) -> LdapQuotaConfig:
        fields = {
            "bytes": settings.QUOTAS_LDAP_BYTES_ATTR,
            "inodes": settings.QUOTAS_LDAP_INODES_ATTR,
            "nearline_bytes": settings.QUOTAS_LDAP_NEARLINE_BYTES_ATTR,
        }
        return cls(
            uri=settings.QUOTAS_LDAP_SERVER_URI,
            bind_dn=settings.QUOTAS_LDAP_BIND_DN,
            bind_password=settings.QUOTAS_LDAP_BIND_PASSWORD,
            start_tls=settings.QUOTAS_LDAP_START_TLS,
            timeout=settings.QUOTAS_LDAP_TIMEOUT,
            base=settings.QUOTAS_LDAP_GROUP_SEARCH_BASE,
            filter_template=settings.QUOTAS_LDAP_GROUP_FILTER,
            name_attr=settings.QUOTAS_LDAP_GROUP_NAME_ATTR,
            attrs=tuple((field, attr) for field, attr in fields.items() if attr),
        )

    def fingerprint(self) -> str:
        """Changes with anything that changes the answer (never with the password)."""
        parts = (self.uri, self.bind_dn, self.base, self.filter_template, self.name_attr, repr(self.attrs))
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


class LdapQuotaClient:
    """One connection per call: bind, search, unbind. Every LDAP error is LdapQuotasUnavailable."""

    def __init__(self, config: LdapQuotaConfig) -> None:
        self.config = config

    def group_filter(self, groups: Sequence[str]) -> str:
        """The groups' filters, each name escaped, joined with ``|`` when there are several."""
        parts = [self.config.filter_template % {"group": escape_filter_chars(group)} for group in groups]
        return parts[0] if len(parts) == 1 else "(|" + "".join(parts) + ")"

    def search(self, groups: Sequence[str]) -> dict[str, RawQuota]:
        """The raw quota values of the groups the directory has an entry for."""
        found: dict[str, RawQuota] = {}
        if not groups:
            return found
        config = self.config
        try:
            with bound(
                config.uri, config.bind_dn, config.bind_password, start_tls=config.start_tls, timeout=config.timeout
            ) as conn:
                for start in range(0, len(groups), MAX_GROUPS_PER_SEARCH):
                    chunk = groups[start : start + MAX_GROUPS_PER_SEARCH]
                    entries = conn.search_ext_s(
                        config.base,
                        ldap.SCOPE_SUBTREE,
                        self.group_filter(chunk),
                        [config.name_attr, *(attr for _field, attr in config.attrs)],
                        timeout=config.timeout,
                    )
                    self._collect(entries, chunk, found)
        except ldap.LDAPError as exc:
            message = describe(exc)
            logger.warning("LDAP quota search on %s failed: %s", config.uri, message)
            raise LdapQuotasUnavailable(message) from exc
        return found

    def _collect(self, entries: list[tuple[Any, Any]], groups: Sequence[str], found: dict[str, RawQuota]) -> None:
        wanted: dict[str, list[str]] = {}
        for group in groups:
            wanted.setdefault(group.lower(), []).append(group)  # names match without case, as cn does
        for dn, attrs in entries:
            if dn is None:  # a search continuation reference (referrals are not followed)
                continue
            values = {name.lower(): items for name, items in attrs.items()}
            names = [text(v) for v in values.get(self.config.name_attr.lower(), [])]
            for group in (g for name in names for g in wanted.get(name.lower(), [])):
                if group in found:
                    logger.warning("LDAP: several entries for group %s; keeping the first, ignoring %s", group, dn)
                    continue
                found[group] = {
                    field: text(values[attr.lower()][0]).strip()
                    for field, attr in self.config.attrs
                    if values.get(attr.lower())
                }


def _cache_key(config: LdapQuotaConfig, group: str) -> str:
    digest = hashlib.sha256(group.encode()).hexdigest()[:24]  # any group name makes a valid memcached key
    return f"quotas:ldap:{config.fingerprint()}:{digest}"


def _down(config: LdapQuotaConfig) -> DownMemory:
    return DownMemory(f"quotas:ldap-down:{config.fingerprint()}")


def quotas_for(groups: Iterable[str]) -> dict[str, RawQuota]:
    """Every group's raw LDAP quota values ({} for a group without an entry): one search at most.

    Raises LdapQuotasUnavailable when the directory does not answer (or failed moments ago).
    """
    names = sorted(set(groups))
    if not names:
        return {}
    config = LdapQuotaConfig.from_settings()
    ttl = settings.QUOTAS_LDAP_CACHE_SECONDS
    keys = {name: _cache_key(config, name) for name in names}
    cached = cache.get_many(list(keys.values())) if ttl else {}
    result = {name: cached[keys[name]] for name in names if keys[name] in cached}
    missing = [name for name in names if name not in result]
    if not missing:
        return result
    down = _down(config)
    if down.recent():
        raise LdapQuotasUnavailable("the LDAP directory failed moments ago; not asking again yet")
    try:
        found = LdapQuotaClient(config).search(missing)
    except LdapQuotasUnavailable:
        down.remember()
        raise
    fresh = {name: found.get(name, {}) for name in missing}
    if ttl:
        cache.set_many({keys[name]: values for name, values in fresh.items()}, ttl)
    result.update(fresh)
    return result
