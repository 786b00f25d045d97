"""The client's address, one rule for the audit log, django-axes and the API's rate limits.

Without a proxy in front (PORTAL_NUM_PROXIES=0, the default) it is REMOTE_ADDR, and
X-Forwarded-For is ignored: any client can send one, and counting it would let a client reset
its own per-address limits with each request. Behind N proxies that each append the address they
saw, it is the N-th address from the right of X-Forwarded-For, the one the outermost trusted
proxy saw; what a client wrote before it is ignored. DRF's throttles apply the same rule
(REST_FRAMEWORK["NUM_PROXIES"] is set from the same setting).
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from django.conf import settings


@functools.lru_cache(maxsize=1024)  # parsed once per address: a request's log line, throttles and audit ask
def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: Any) -> str | None:
    """The client's IP address, or None when the request carries none that is valid."""
    remote = _address(str(request.META.get("REMOTE_ADDR") or ""))
    proxies = int(settings.PORTAL_NUM_PROXIES)
    forwarded = [a for a in str(request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",") if a.strip()]
    if proxies and forwarded:
        return _address(forwarded[-min(proxies, len(forwarded))]) or remote
    return remote
