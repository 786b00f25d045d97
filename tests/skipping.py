"""Skipping for want of something (a stack, a browser, data the stack did not produce).

Locally the test is skipped and says what is missing; under CI=true nothing may be skipped, so the
same call fails it. tests/test_no_silent_skips.py refuses any other skip in the suite.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> NoReturn:
    if under_ci():
        pytest.fail(f"{reason} (CI=true: nothing may be skipped)")
    pytest.skip(reason)
