"""POSTs with an API token to a registered route, answered before most of the middleware.

A busy uploader's requests carry an ``Authorization: Token`` header and nothing else of a
browser: no cookie (so no session, CSRF cookie or language cookie), no query string. An app
registers such a route with its handler (``register_token_post("jobstats:jobscript-list",
upload)``, in its AppConfig.ready()); TokenPostMiddleware, placed right after the request log
and the metrics (which time, count and log it as any request), calls the handler with the
route's ResolverMatch set and gives its answer what the middleware it skips would give it, by
their own code (MIRRORED): the HTTPS redirect and the security headers (SecurityMiddleware), the
language and Content-Language (LocaleMiddleware), the Host check against ALLOWED_HOSTS, the
refused user agents and Content-Length (CommonMiddleware), the Content-Security-Policy, and
X-Frame-Options (a middleware further down). The others have nothing to do for such a request
(NOTHING_TO_DO says why), and below them the sign-in middleware (sessions' user, CSRF, remote
users, messages, django-axes: token checks are no sign-in attempt), the access-rule middleware
(the handler applies the route's rule itself) and the URL resolution are skipped.

Anything the lean path would not answer exactly as the whole stack does goes down the whole
stack, where the route's own view answers: a redirect or a refusal by the middleware (a bad
Host is the 400 Django gives), a cookie, a query string, and whatever the handler does not take
(it answers None: a refused token, a body that is not a plain valid upload...). An exception in
the handler is answered as Django answers an exception raised by a middleware (a 500).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.core import signals
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import NoReverseMatch, ResolverMatch, get_resolver, get_script_prefix, resolve, reverse
from django.utils.log import log_response

from userportal.metrics import MetricsMiddleware
from userportal.middleware import ContentSecurityPolicyMiddleware, RequestLogMiddleware

# The middleware between TokenPostMiddleware and the sign-in middleware (settings.MIDDLEWARE, in
# order), and X-Frame-Options below them: what the lean path does in their place.
MIRRORED = (
    "django.middleware.security.SecurityMiddleware",  # its process_request and process_response
    "whitenoise.middleware.WhiteNoiseMiddleware",  # NOTHING_TO_DO
    "userportal.middleware.ContentSecurityPolicyMiddleware",  # its process_response
    "userportal.middleware.RejectNulMiddleware",  # NOTHING_TO_DO
    "django.contrib.sessions.middleware.SessionMiddleware",  # NOTHING_TO_DO
    "django.middleware.locale.LocaleMiddleware",  # its process_request and process_response
    "django.middleware.common.CommonMiddleware",  # its process_request and process_response
)
NOTHING_TO_DO = {
    "whitenoise.middleware.WhiteNoiseMiddleware": "it serves STATIC_URL only (no WHITENOISE_ROOT)",
    "userportal.middleware.RejectNulMiddleware": "no query string, and the handler takes JSON bodies only",
    "django.contrib.sessions.middleware.SessionMiddleware": "no cookie: no session read, saved or deleted",
}
FIRST_SKIPPED = "django.middleware.csrf.CsrfViewMiddleware"

# What Django's request cycle runs for every request (TokenPostHandler skips them): receivers of
# request_started and request_finished, and what each does for a token POST answered here.
LIFECYCLE_RECEIVERS = {
    "django.db.reset_queries": "empties the debug query log: the upload logs none outside DEBUG",
    "django.db.close_old_connections": "called by TokenPostHandler itself, before and after",
    "django.core.cache.close_caches": "a no-op for Redis and local memory; a memcached client stays connected",
    "django.core.handlers.base.reset_urlconf": "the lean path sets no URL conf",
    "jobstats.services._request_started": "work deferred after the response: the upload defers none",
    "jobstats.services._request_finished": "the same",
}
# Set in the environ of a token POST the lean path declined: TokenPostMiddleware does not try again.
DECLINED = "userportal.token_post_declined"

Handler = Callable[[HttpRequest], HttpResponse | None]
_handlers: dict[str, Handler] = {}  # URL name -> handler
# The URL conf they were resolved in (a new one after clear_url_caches()), and path -> (match, handler).
_routes: tuple[object, dict[str, tuple[ResolverMatch, Handler]]] = (None, {})


def register_token_post(url_name: str, handler: Handler) -> None:
    """Answer token POSTs to the route `url_name` (no arguments) with `handler` (None: not taken)."""
    global _routes
    _handlers[url_name] = handler
    _routes = (None, {})


def _token_routes() -> dict[str, tuple[ResolverMatch, Handler]]:
    global _routes
    resolver = get_resolver()
    if _routes[0] is not resolver:
        routes = {}
        for name, handler in _handlers.items():
            try:
                path = "/" + reverse(name)[len(get_script_prefix()) :]  # as request.path_info has it
            except NoReverseMatch:  # the app's URLs are not mounted (PORTAL_MODULES)
                continue
            routes[path] = (resolve(path), handler)
        _routes = (resolver, routes)
    return _routes[1]


class TokenPostMiddleware:
    """Registered token POSTs answered here (see the module); everything else passes through."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.security = SecurityMiddleware(get_response)
        self.locale = LocaleMiddleware(get_response)
        self.common = CommonMiddleware(get_response)
        self.frame_options = XFrameOptionsMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if (
            request.method == "POST"
            and "HTTP_AUTHORIZATION" in meta
            and not meta.get("QUERY_STRING")
            and not meta.get("HTTP_COOKIE")
            and DECLINED not in meta
        ):
            route = _token_routes().get(request.path_info)
            if route is not None:
                answer = self.answer(request, *route)
                if answer is not None:
                    return answer
        response: HttpResponse = self.get_response(request)
        return response

    def answer(self, request: HttpRequest, match: ResolverMatch, handler: Handler) -> HttpResponse | None:
        """The handler's answer with what the mirrored middleware add; None for the whole stack."""
        try:
            if self.security.process_request(request) is not None:  # the HTTPS redirect
                return None
            self.locale.process_request(request)
            if self.common.process_request(request) is not None:  # PREPEND_WWW's redirect
                return None
        except Exception:  # a Host not in ALLOWED_HOSTS, a refused user agent: answered by the whole stack
            return None
        request.resolver_match = match
        try:
            response = handler(request)
        except Exception as exc:  # as a middleware's exception: Django's answer, then the middleware above
            response = response_for_exception(request, exc)
        if response is None:
            return None
        # the mirrored middleware's answers, innermost first (X-Frame-Options is set below them)
        answer: Any = self.frame_options.process_response(request, response)
        answer = self.common.process_response(request, answer)
        answer = self.locale.process_response(request, answer)
        answer = ContentSecurityPolicyMiddleware.process_response(request, answer)
        return self.security.process_response(request, answer)


class TokenPostHandler(WSGIHandler):
    """Django's WSGI handler, with registered token POSTs answered before its request cycle.

    The cycle (the script prefix, request_started and request_finished, whose receivers walk
    every connection and cache through asgiref locals, and the URL conf) cost an upload a fifth of
    its CPU. Here a token POST to a registered route gets its connections checked before and after
    (close_old_connections, what request_started and request_finished do that matters for it:
    LIFECYCLE_RECEIVERS says why the others have nothing to do), the request log and the metrics
    (their middleware's own code) around TokenPostMiddleware.answer, and Django's log line for an
    answer of 400 or more. What it declines goes through the whole cycle with the body it read.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lean = TokenPostMiddleware(self.get_response)
        # as load_middleware builds them: an exception becomes Django's answer at each level
        self.measured: Callable[[HttpRequest], Any] = convert_exception_to_response(
            RequestLogMiddleware(convert_exception_to_response(MetricsMiddleware(self._answer)))
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or "HTTP_AUTHORIZATION" not in environ
            or environ.get("QUERY_STRING")
            or environ.get("HTTP_COOKIE")
        ):
            return super().__call__(environ, start_response)
        request = self.request_class({**environ})  # WSGIRequest writes the decoded path into its environ
        route = _token_routes().get(request.path_info)
        if route is None:
            return super().__call__(environ, start_response)
        request.token_route = route  # type: ignore[attr-defined]
        close_old_connections()
        response = self.measured(request)
        if response is None:  # declined: the whole cycle answers, from the same body
            if hasattr(request, "_body"):
                environ["wsgi.input"] = io.BytesIO(request._body)
            environ[DECLINED] = True
            return super().__call__(environ, start_response)
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        body = response.content
        request.close()
        close_old_connections()
        return [body]

    def _answer(self, request: HttpRequest) -> HttpResponse | None:
        match, handler = request.token_route  # type: ignore[attr-defined]
        return self.lean.answer(request, match, handler)


def lifecycle_receivers() -> set[str]:
    """The receivers of request_started and request_finished, by dotted name (the test's list)."""
    names = set()
    for signal in (signals.request_started, signals.request_finished):
        for receiver in signal._live_receivers(None)[0]:
            names.add(f"{receiver.__module__}.{receiver.__qualname__}")
    return names
