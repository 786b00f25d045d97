"""Rate limits of the job-queue API: DRF throttles counting in the `throttle` cache (Redis in production).

SubmitUserThrottle: JOBQUEUE_SUBMIT_RATE submissions per user. EndpointIPThrottle: per client
IP and endpoint (the view's `throttle_scope`), rates from JOBQUEUE_IP_RATES. Queue admins are
exempt when JOBQUEUE_ADMIN_EXEMPT is true (the seed server's "no rate limits" for admins).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle

from jobqueue.tokens import is_queue_admin


class _JobQueueThrottle(SimpleRateThrottle):
    @property
    def cache(self) -> Any:  # type: ignore[override]
        return caches["throttle"]  # looked up per request: tests and settings may swap it

    def allow_request(self, request: Any, view: Any) -> bool:
        if settings.JOBQUEUE_ADMIN_EXEMPT and is_queue_admin(request):
            return True
        return super().allow_request(request, view)


class SubmitUserThrottle(_JobQueueThrottle):
    scope = "jobqueue-submit-user"

    def get_rate(self) -> str:
        return str(settings.JOBQUEUE_SUBMIT_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # refused by authentication anyway
        return f"jobqueue:submit:user:{user.pk}"


class EndpointIPThrottle(_JobQueueThrottle):
    scope = "jobqueue-ip"

    def __init__(self) -> None:  # the rate depends on the view: set in allow_request
        pass

    def allow_request(self, request: Any, view: Any) -> bool:
        endpoint = getattr(view, "throttle_scope", "")
        self.rate = settings.JOBQUEUE_IP_RATES.get(endpoint)
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.endpoint = endpoint
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return f"jobqueue:ip:{self.endpoint}:{self.get_ident(request)}"
