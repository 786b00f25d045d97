"""OpenID Connect discovery: the provider's endpoints from its `.well-known/openid-configuration`.

With OIDC_OP_DISCOVERY_URL set, the authorization, token, userinfo and JWKS endpoints an
OIDC_OP_*_ENDPOINT setting leaves empty come from the provider's discovery document (OpenID
Connect Discovery 1.0); an explicit setting always wins. The document is read at its first use
(the "Sign in with your institution" button, the callback), kept CACHE_SECONDS, then read again;
when a later read fails, the last good document is kept. When the provider cannot be read at all,
one error line in the log names the URL and the reason, the sign-in button shows the "temporarily
unavailable" page (503), and the next attempt after RETRY_SECONDS reads it again.

A document is refused when its `issuer` is not the URL the document was read from without
`/.well-known/openid-configuration` (Discovery 4.3: another provider's document must not be used),
or when an endpoint is not an http(s) URL.
"""

from __future__ import annotations

import logging
import threading
import time

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from userportal.errors import DataSourceError

logger = logging.getLogger(__name__)

# The portal's settings and the discovery document's names for them.
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
WELL_KNOWN = "/.well-known/openid-configuration"
CACHE_SECONDS = 3600.0
RETRY_SECONDS = 30.0


class DiscoveryUnavailable(DataSourceError):
    source = "oidc"
    user_message = _("The sign-in service (OpenID Connect) is not answering. Try again in a few minutes.")


class _Entry:
    def __init__(self, read_at: float, document: dict[str, str] | None, error: str) -> None:
        self.read_at = read_at
        self.document = document
        self.error = error


_lock = threading.Lock()
_cache: dict[str, _Entry] = {}


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def read_document(url: str, timeout: float) -> dict[str, str]:
    """The endpoints (by setting name) and the issuer of the discovery document at `url`."""
    response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
    response.raise_for_status()
    try:
        document = response.json()
    except ValueError:
        raise ValueError("the answer is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("the answer is not a JSON object")
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise ValueError("the document names no issuer")
    path = url.split("?", 1)[0].split("#", 1)[0]
    if path.endswith(WELL_KNOWN) and issuer.rstrip("/") != path[: -len(WELL_KNOWN)].rstrip("/"):
        raise ValueError(f"its issuer {issuer!r} is not the URL's ({path[: -len(WELL_KNOWN)]!r})")
    found = {"issuer": issuer}
    for name, key in ENDPOINTS.items():
        value = document.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise ValueError(f"{key} is not an http(s) URL: {value!r}")
        found[name] = value
    return found


def discovered() -> dict[str, str]:
    """The discovery document's endpoints by setting name ({} without OIDC_OP_DISCOVERY_URL)."""
    url = str(settings.OIDC_OP_DISCOVERY_URL or "")
    if not url:
        return {}
    now = time.monotonic()
    with _lock:
        entry = _cache.get(url)
    if entry is not None:
        if entry.document is not None and now - entry.read_at < CACHE_SECONDS:
            return entry.document
        if entry.document is None and now - entry.read_at < RETRY_SECONDS:
            raise DiscoveryUnavailable(entry.error)
    try:
        document = read_document(url, float(settings.OIDC_TIMEOUT))
    except (requests.RequestException, ValueError) as exc:
        error = f"OIDC_OP_DISCOVERY_URL={url} cannot be used: {exc}"
        if entry is not None and entry.document is not None:
            logger.error("%s; keeping the document read %.0f s ago", error, now - entry.read_at)
            with _lock:  # try again in RETRY_SECONDS, the old document meanwhile
                _cache[url] = _Entry(now - CACHE_SECONDS + RETRY_SECONDS, entry.document, error)
            return entry.document
        logger.error("%s", error)
        with _lock:
            _cache[url] = _Entry(now, None, error)
        raise DiscoveryUnavailable(error) from exc
    logger.info(
        "OIDC discovery: %s from %s",
        ", ".join(f"{ENDPOINTS[name]}={value}" for name, value in document.items() if name in ENDPOINTS),
        url,
    )
    with _lock:
        _cache[url] = _Entry(now, document, "")
    return document


def endpoint(name: str) -> str:
    """The OIDC_OP_*_ENDPOINT setting `name`: its own value, else the discovery document's."""
    explicit = str(getattr(settings, name, "") or "")
    if explicit or not settings.OIDC_OP_DISCOVERY_URL:
        return explicit
    value = discovered().get(name, "")
    if not value:
        error = f"OIDC_OP_DISCOVERY_URL={settings.OIDC_OP_DISCOVERY_URL} names no {ENDPOINTS[name]}; set {name}"
        logger.error("%s", error)
        raise DiscoveryUnavailable(error)
    return value
