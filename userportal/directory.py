"""Asking an LDAP directory for something other than a sign-in: bind, search, unbind.

The quotas' LDAP source (group attributes) and cloudstats' (a user's project groups) both connect
here: protocol 3, no referrals, the timeout on connecting and on every call, StartTLS when asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ldap


@contextmanager
def bound(uri: str, bind_dn: str, password: str, *, start_tls: bool, timeout: float) -> Iterator[Any]:
    """A connection bound as ``bind_dn`` (anonymous when empty), unbound on leaving. Raises ldap.LDAPError."""
    conn = ldap.initialize(uri)
    try:
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, timeout)  # connecting
        conn.set_option(ldap.OPT_TIMEOUT, timeout)  # every synchronous call after that
        if start_tls:
            conn.start_tls_s()
        conn.simple_bind_s(bind_dn, password)
        yield conn
    finally:
        try:
            conn.unbind_s()
        except ldap.LDAPError:
            pass


def text(value: bytes | str) -> str:
    """An attribute value as text (python-ldap gives bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def describe(exc: ldap.LDAPError) -> str:
    """python-ldap's error as one line: its description and the server's message."""
    detail = exc.args[0] if exc.args else None
    if isinstance(detail, dict):
        return " - ".join(str(detail[key]) for key in ("desc", "info") if detail.get(key)) or type(exc).__name__
    return str(exc) or type(exc).__name__
