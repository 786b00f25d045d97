"""A valid request's data for the priorities tests (override any field)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from priorities.policy import RequestData


def request_data(**overrides: object) -> RequestData:
    values: dict[str, object] = {
        "account": "def-owner",
        "gpu_type": "a100",
        "gpu_count": 2,
        "start": timezone.now() + timedelta(hours=2),
        "duration_days": 7,
        "justification": "paper deadline",
        "ticket": "4242",
        "users": ["member"],
    }
    values.update(overrides)
    return RequestData(**values)  # type: ignore[arg-type]
