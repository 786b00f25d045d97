"""Django's Redis and local-memory caches, counting their hits and misses for /metrics.

userportal/settings.py swaps Django's backend paths for these (``INSTRUMENTED``); the counts go to
the metrics buffer (userportal/metrics_store.py), which the request's end flushes. The cache is
labelled ``throttle`` (the rate limits' counters) or ``default``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.cache.backends import locmem, redis

_MISSING = object()

INSTRUMENTED = {
    "django.core.cache.backends.redis.RedisCache": "userportal.cache_backends.RedisCache",
    "django.core.cache.backends.locmem.LocMemCache": "userportal.cache_backends.LocMemCache",
}


class _Counting:
    key_prefix: str

    def _count(self, hits: int, misses: int) -> None:
        from userportal.metrics import count_cache

        count_cache("throttle" if self.key_prefix == "throttle" else "default", hits, misses)

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        value = super().get(key, _MISSING, version)  # type: ignore[misc]
        if value is _MISSING:
            self._count(0, 1)
            return default
        self._count(1, 0)
        return value


class ReusingRedisCacheClient(redis.RedisCacheClient):
    """Django's client builds a new ``redis.Redis`` (and its table of ~170 response callbacks) for
    every cache call; this one keeps one per connection pool (they are thread-safe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django_client: Any = self  # django-stubs leave out the private helpers used below
        index = django_client._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = django_client._get_connection_pool(index)
            client = self._clients[index] = django_client._client(connection_pool=pool)
        return client


class RedisCache(_Counting, redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        # Django's own get_many reads them at once (LocMemCache's goes through get(), counted there)
        keys = list(keys)
        found: dict[Any, Any] = super().get_many(keys, version)
        self._count(len(found), len(keys) - len(found))
        return found


class LocMemCache(_Counting, locmem.LocMemCache):
    pass
