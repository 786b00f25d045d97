"""Where the portal's own metrics are counted: Redis, shared by every process, or one process's memory.

mod_wsgi runs several processes (and several instances may sit behind a balancer), Celery others:
counts kept in each process's memory would show only the process that answered the scrape. So each
process adds what it counted to Redis hashes (HINCRBYFLOAT, atomic) in one round trip (``flush``):
a request's counts within PORTAL_METRICS_FLUSH_SECONDS, from a background thread that adds every
request of that interval at once (``flush_soon``; a request waits for no round trip), a task's at
once. ``/metrics`` reads the totals from there: any process, on any instance, answers with every
process's counts (a process's last second of counts at most not yet added). Without ``PORTAL_METRICS_REDIS_URL`` (REDIS_URL when it is set)
the counts stay in this process's memory (development; ``check --deploy`` warns).

Between flushes the counts wait in a process buffer (cache hits and misses happen anywhere in a
request). A Redis that fails is left alone for ``DOWN_SECONDS`` (those counts are dropped and
``portal_metrics_dropped_total`` says so): metrics never slow requests down.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

PREFIX = "portal:metrics:"
DOWN_SECONDS = 30.0
# Seconds of request latency (histogram bucket bounds); +Inf is implied.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[str, ...]

_lock = threading.Lock()
_pending: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_memory: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_state: dict[str, Any] = {"client": None, "url": None, "down_until": 0.0, "dropped": 0.0, "flusher_pid": 0}
_wake = threading.Event()


@functools.lru_cache(maxsize=4096)  # a few label sets per view: encoded once, not at every count
def _field(labels: Labels) -> str:
    return json.dumps(list(labels), separators=(",", ":"))


def labels_of(field: str) -> Labels:
    return tuple(json.loads(field))


def inc(metric: str, labels: Labels, amount: float = 1.0) -> None:
    """Add ``amount`` to the counter ``metric`` with these label values (buffered until ``flush``)."""
    with _lock:
        _pending[metric][_field(labels)] += amount


def observe(metric: str, labels: Labels, value: float) -> None:
    """One observation of the histogram ``metric``: its bucket, sum and count (buffered)."""
    bucket = next((str(bound) for bound in BUCKETS if value <= bound), "+Inf")
    with _lock:
        pending = _pending[metric]
        pending[_field((*labels, "bucket", bucket))] += 1
        pending[_field((*labels, "sum", ""))] += value
        pending[_field((*labels, "count", ""))] += 1


def redis_url() -> str:
    return str(getattr(settings, "PORTAL_METRICS_REDIS_URL", "") or "")


def shared() -> bool:
    """Whether the counts are shared by every process (Redis) rather than kept per process."""
    return bool(redis_url())


def client() -> Any:
    import redis

    url = redis_url()
    if _state["client"] is None or _state["url"] != url:
        _state["client"] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        _state["url"] = url
    return _state["client"]


def _take() -> dict[str, dict[str, float]]:
    with _lock:
        taken = {metric: dict(values) for metric, values in _pending.items() if values}
        _pending.clear()
    return taken


def flush() -> None:
    """Add the buffered counts to the store: one Redis round trip (nothing when nothing was counted)."""
    taken = _take()
    if not taken:
        return
    if not shared():
        with _lock:
            for metric, values in taken.items():
                for field, amount in values.items():
                    _memory[metric][field] += amount
        return
    if time.monotonic() < _state["down_until"]:
        _state["dropped"] += sum(len(values) for values in taken.values())
        return
    try:
        pipe = client().pipeline(transaction=False)
        for metric, values in taken.items():
            for field, amount in values.items():
                pipe.hincrbyfloat(PREFIX + metric, field, amount)
        pipe.execute()
    except Exception as exc:  # Redis down or slow: drop these counts, leave it alone a while
        _state["down_until"] = time.monotonic() + DOWN_SECONDS
        _state["dropped"] += sum(len(values) for values in taken.values())
        logger.warning("metrics: Redis %s failed (%s); counts dropped for %.0f s", redis_url(), exc, DOWN_SECONDS)


def flush_soon() -> None:
    """A request's end: its counts added within PORTAL_METRICS_FLUSH_SECONDS by this process's
    background flusher (with the other requests' of that interval), or at once (0, or no Redis)."""
    if not start_flusher():
        flush()
        return
    _wake.set()


def start_flusher() -> bool:
    """Start this process's background flusher if there is none yet; False when counts are flushed at once."""
    interval = float(getattr(settings, "PORTAL_METRICS_FLUSH_SECONDS", 0) or 0)
    if interval <= 0 or not shared():
        return False
    if _state["flusher_pid"] != os.getpid():  # none yet in this process (or it was forked from one)
        with _lock:
            if _state["flusher_pid"] != os.getpid():
                _state["flusher_pid"] = os.getpid()
                threading.Thread(target=_flusher, args=(interval,), name="metrics-flush", daemon=True).start()
                atexit.register(flush)  # a stopping process adds its last counts
    return True


def _flusher(interval: float) -> None:
    while True:
        _wake.wait()
        time.sleep(interval)  # the counts of the requests that end meanwhile join this round trip
        _wake.clear()
        try:
            flush()
        except Exception:  # never let the thread die: the next requests' counts would wait forever
            logger.exception("metrics: flush failed")


def read(metrics: Iterable[str]) -> dict[str, dict[Labels, float]]:
    """Every metric's totals by label values (this process's buffer flushed first)."""
    flush()
    names = list(metrics)
    raw: list[dict[Any, Any]]
    if shared():
        pipe = client().pipeline(transaction=False)
        for name in names:
            pipe.hgetall(PREFIX + name)
        raw = pipe.execute()
    else:
        with _lock:
            raw = [dict(_memory.get(name, {})) for name in names]
    result: dict[str, dict[Labels, float]] = {}
    for name, values in zip(names, raw, strict=True):
        result[name] = {labels_of(_text(field)): float(_text(amount)) for field, amount in values.items()}
    return result


def dropped() -> float:
    return float(_state["dropped"])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def reset(metrics: Sequence[str] = ()) -> None:
    """Forget every count (tests): the buffer, this process's memory and, given names, their Redis hashes."""
    with _lock:
        _pending.clear()
        _memory.clear()
    _state.update(down_until=0.0, dropped=0.0)
    if shared() and metrics:
        client().delete(*(PREFIX + name for name in metrics))
