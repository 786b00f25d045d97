"""POSTs with an API token to a registered route, answered before the sign-in middleware.

A busy uploader's requests carry an ``Authorization: Token`` header and nothing else of a
browser: no session, no CSRF cookie, no remote user, no messages. An app registers such a route
with its handler (``register_token_post("jobstats:jobscript-list", upload)``, in its
AppConfig.ready()); TokenPostMiddleware, placed after the middleware that shape every answer
(the request log, the metrics, the security headers, the language, CommonMiddleware), calls the
handler with the route's ResolverMatch set, and skips the rest: sessions' user, CSRF (token
requests are exempt anyway), remote users, messages, django-axes (token checks are no sign-in
attempt), the access-rule middleware (which leaves API views to their own check) and the URL
resolution. The handler authenticates the token and applies the route's access rule itself; it
answers None for anything it does not take, which then goes down the whole stack as before.
X-Frame-Options, set by a middleware below this one, is added by that middleware's own code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.urls import NoReverseMatch, ResolverMatch, get_resolver, get_script_prefix, resolve, reverse

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
        self.frame_options = XFrameOptionsMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and "HTTP_AUTHORIZATION" in request.META and not request.META.get("QUERY_STRING"):
            route = _token_routes().get(request.path_info)
            if route is not None:
                match, handler = route
                request.resolver_match = match
                answer = handler(request)
                if answer is not None:
                    return self.frame_options.process_response(request, answer)
        response: HttpResponse = self.get_response(request)
        return response
