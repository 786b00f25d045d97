from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.functional import empty

from userportal.clientip import client_ip
from userportal.errors import DataSourceError, as_data_source_error

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("userportal.requests")


class RequestLogMiddleware:
    """One line per request on `userportal.requests` (PORTAL_REQUEST_LOG): method, path, status,
    duration in ms, user and client address, e.g.
    `GET /secure/jobstats/alice/ 200 41.7ms user=alice ip=192.0.2.7`.

    The path is the one requested, without its query string (tokens travel there), percent-encoded
    again so a crafted path cannot forge a line. The user is the signed-in one ("-" for anonymous
    requests, and for those that never looked at the user: static files), never loaded only for
    this line. First in MIDDLEWARE, so the time covers every other middleware.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.PORTAL_REQUEST_LOG:
            response: HttpResponse = self.get_response(request)
            return response
        start = time.perf_counter()
        response = self.get_response(request)
        if response is None:  # declined by a lean path (userportal.token_posts): the whole cycle logs it
            return response
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        request_logger.info(
            "%s %s %d %.1fms user=%s ip=%s",
            quote(request.method or "-", safe=""),
            quote(request.path, safe="/:@!$&'()*+,;=-._~"),
            response.status_code,
            elapsed_ms,
            request_username(request),
            client_ip(request) or "-",
        )
        return response


def request_username(request: HttpRequest) -> str:
    """The signed-in user's name, "-" when anonymous or when the request never loaded its user."""
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty:
        return "-"  # a lazy user nobody looked at: loading it here would cost a query per request
    return quote(user.get_username(), safe="@.+-_") if user.is_authenticated else "-"


class ContentSecurityPolicyMiddleware:
    """Sends PORTAL_CSP. Our pages carry no inline script, so script-src 'self' holds."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.process_response(request, self.get_response(request))

    @staticmethod
    def process_response(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if settings.PORTAL_CSP and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.PORTAL_CSP
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A data source that fails outside a view's own handling still gets a page, not a 500."""
        error = as_data_source_error(exception)
        if error is None:
            return None
        return unavailable_response(request, error, exception)


class RejectNulMiddleware:
    """A NUL character in a query string or form field is a 400, everywhere.

    No legitimate parameter holds one, PostgreSQL refuses it in every string (a 500 where it
    reached a query), and Django's form fields already refuse it: this one rule covers the views
    that read request.GET directly. Form bodies are read as CSRF's check reads them (DRF then takes
    the parsed request.POST and FILES); JSON bodies are left to the serializers.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fields = [request.GET]
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            fields.append(request.POST)
        for params in fields:
            for name, values in params.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    message = f"The parameter {name.replace(chr(0), '')!r} contains a NUL character."
                    if wants_json(request):
                        return JsonResponse({name.replace("\x00", ""): [message]}, status=400)
                    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        response: HttpResponse = self.get_response(request)
        return response


def unavailable_response(request: HttpRequest, error: DataSourceError, exception: BaseException) -> HttpResponse:
    """The page (or JSON) of a data source that is down: its notice and its status (503, 502)."""
    logger.warning("data source %s unavailable for %s: %s", error.source, request.path, exception)
    if wants_json(request):
        return JsonResponse(
            {"detail": str(error.user_message), "source": error.source, "code": "data_source_unavailable"},
            status=error.status_code,
        )
    return render(request, "unavailable.html", {"error": error}, status=error.status_code)


def wants_json(request: HttpRequest) -> bool:
    return (
        request.path.endswith(".json")
        or request.path.startswith("/api/")
        or "application/json" in request.headers.get("Accept", "")
    )
