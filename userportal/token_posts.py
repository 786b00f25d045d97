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

from collections.abc import Callable
from typing import Any

from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import NoReverseMatch, ResolverMatch, get_resolver, get_script_prefix, resolve, reverse

from userportal.middleware import ContentSecurityPolicyMiddleware

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
