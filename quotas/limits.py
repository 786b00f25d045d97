"""Each group's quota limits, from QUOTAS_SOURCE: the Quota model, a JSON/YAML file or LDAP attributes.

Sizes are read as Lustre's lfs prints them ("10T", "500 GiB") or as numbers of bytes; a group the
source does not know takes the default limits (QUOTAS_DEFAULT_*).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from quotas import ldap_source
from quotas.models import Quota

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    bytes: int
    inodes: int
    nearline_bytes: int = 0


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]?)i?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5, "E": 1024**6}


def parse_size(value: Any) -> int:
    """``1099511627776``, ``"1T"``, ``"500 GiB"`` → bytes (binary units, as Lustre's lfs prints them)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def default_limits() -> Limits:
    return Limits(settings.QUOTAS_DEFAULT_BYTES, settings.QUOTAS_DEFAULT_INODES, settings.QUOTAS_DEFAULT_NEARLINE_BYTES)


def load_quota_file(path: str) -> dict[str, Limits]:
    """``{"default": {...}, "groups": {"physics": {"bytes": "10T", "inodes": 1000000, "nearline_bytes": "50T"}}}``.

    JSON, or YAML when the name ends in .yaml/.yml. A group without a value takes the default's.
    """
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with 'default' and 'groups'")
    base = default_limits()
    default = _limits(data.get("default") or {}, base)
    groups = data.get("groups") or {}
    if not isinstance(groups, dict):
        raise ValueError(f"{path}: 'groups' must be a mapping of group name to limits")
    result = {"*": default}
    for name, values in groups.items():
        result[str(name)] = _limits(values or {}, default)
    return result


def _limits(values: dict[str, Any], base: Limits) -> Limits:
    return Limits(
        bytes=parse_size(values.get("bytes", base.bytes)),
        inodes=int(values.get("inodes", base.inodes)),
        nearline_bytes=parse_size(values.get("nearline_bytes", base.nearline_bytes)),
    )


def limits_for(groups: Iterable[str]) -> dict[str, Limits]:
    """Each group's limits from QUOTAS_SOURCE (model: one query; file: read per call, small; ldap:
    one search, cached). LDAP down raises LdapQuotasUnavailable."""
    names = sorted(set(groups))
    if settings.QUOTAS_SOURCE == "file":
        table = load_quota_file(settings.QUOTAS_FILE)
        return {name: table.get(name, table["*"]) for name in names}
    if settings.QUOTAS_SOURCE == "ldap":
        return ldap_limits(names)
    rows = {q.group: q for q in Quota.objects.filter(group__in=names)}
    base = default_limits()
    return {
        name: Limits(rows[name].bytes_limit, rows[name].inodes_limit, rows[name].nearline_bytes_limit)
        if name in rows
        else base
        for name in names
    }


def ldap_limits(groups: Iterable[str]) -> dict[str, Limits]:
    """Limits from the groups' LDAP attributes; a missing or unreadable attribute takes the default."""
    names = sorted(set(groups))
    raw = ldap_source.quotas_for(names)
    base = default_limits()
    return {name: _ldap_limits(name, raw.get(name, {}), base) for name in names}


def _ldap_limits(group: str, values: dict[str, str], base: Limits) -> Limits:
    def read(field: str, default: int) -> int:
        if field not in values:
            return default
        try:
            return parse_size(values[field])
        except ValueError:
            logger.warning(
                "LDAP quota %s of group %s is not a size: %r; using the default", field, group, values[field]
            )
            return default

    return Limits(
        bytes=read("bytes", base.bytes),
        inodes=read("inodes", base.inodes),
        nearline_bytes=read("nearline_bytes", base.nearline_bytes),
    )
