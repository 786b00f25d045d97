"""Waiting for the stack: poll a predicate until it holds, or fail the test saying what never came."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], seconds: float, what: str, *, interval: float = 0.2) -> T:
    """The predicate's first truthy value, polled every `interval` s; pytest.fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(interval)
