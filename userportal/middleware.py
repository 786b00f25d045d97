from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from userportal.errors import DataSourceError, as_data_source_error

logger = logging.getLogger(__name__)


class ContentSecurityPolicyMiddleware:
    """Sends PORTAL_CSP. Our pages carry no inline script, so script-src 'self' holds."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
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
