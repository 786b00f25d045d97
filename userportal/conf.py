"""Strict readers for environment settings.

django-environ does the parsing of URLs and lists; these helpers add what it lacks: a boolean
that refuses anything but a clear yes or no (``env.bool`` reads "ture" as False), and numbers
and choices that name the variable in the error, so a typo stops start-up with a message
instead of running with a silently wrong value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.FileAwareEnv()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def strict_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true or false.")


def strict_int(name: str, *, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}.")
    return value


def strict_float(name: str, *, default: float, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}.")
    return value


def strict_choice(name: str, *, default: str, choices: Iterable[str]) -> str:
    allowed = tuple(choices)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if value not in allowed:
        raise ImproperlyConfigured(f"{name}={raw!r} must be one of: {', '.join(allowed)}.")
    return value


def str_list(name: str, *, default: Iterable[str] = ()) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


# An LDAP attribute description: a name (RFC 4512 keystring) or a numeric OID.
_LDAP_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+")


def strict_ldap_attribute(name: str, *, default: str, allow_empty: bool = False) -> str:
    """An LDAP attribute name such as ``cn`` or ``hpcQuotaBytes``; empty only when ``allow_empty``."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip()
    if value == "" and allow_empty:
        return ""
    if not _LDAP_ATTRIBUTE.fullmatch(value):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an LDAP attribute name such as cn.")
    return value


def strict_ldap_filter(name: str, *, default: str, placeholder: str) -> str:
    """An LDAP filter with one ``%(placeholder)s``, e.g. ``(&(objectClass=posixGroup)(cn=%(group)s))``.

    The value put in its place is escaped by the caller (ldap.filter.escape_filter_chars); here
    the template itself must be a parenthesised filter that Python's %-formatting accepts.
    """
    raw = os.environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    marker = f"%({placeholder})s"
    problem = None
    if marker not in value:
        problem = f"it must contain {marker}"
    else:
        try:
            filled = value % {placeholder: "x"}
        except (KeyError, ValueError, TypeError):
            problem = f"its only %-placeholder must be {marker} (write a literal % as %%)"
        else:
            if not _one_parenthesised(filled):
                problem = "it must be one filter in balanced parentheses"
    if problem:
        raise ImproperlyConfigured(f"{name}={value!r} is not an LDAP filter template: {problem}.")
    return value


def _one_parenthesised(text: str) -> bool:
    """``(...)`` whose first parenthesis closes at the very end (escaped parentheses are \\28 and \\29)."""
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth <= 0 and (index < len(text) - 1 or depth < 0 or char != ")"):
            return False
    return bool(text) and depth == 0


def strict_patterns(name: str, *, default: dict[str, str]) -> dict[str, str]:
    """A JSON object of names to regular expressions (``{"GROMACS": "^gmx"}``), each compiled once here."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return dict(default)
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object of names to regular expressions: {exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ImproperlyConfigured(
            f'{name} must be a JSON object of names to regular expressions, e.g. {{"GROMACS": "^gmx"}}.'
        )
    for key, pattern in value.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ImproperlyConfigured(f"{name}: the pattern of {key!r} is not a regular expression: {exc}") from exc
    return value
