from __future__ import annotations

import logging
import os
import socket
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from userportal import beat
from userportal.clusters import SESSION_KEY, clusters, current_cluster
from userportal.errors import DataSourceError, InvalidInput
from userportal.health import check_sources
from userportal.middleware import wants_json
from userportal.modules import enabled_modules

logger = logging.getLogger(__name__)


def home(request: HttpRequest) -> HttpResponse:
    cards = []
    for module in enabled_modules():
        if module.staff_only and not request.user.is_staff:
            continue
        figures: list[dict[str, Any]] = []
        unavailable = None
        provider = f"{module.name}.services.headline"
        try:
            figures = import_string(provider)(request.user, cluster=current_cluster(request))
        except ImportError:
            figures = []
        except DataSourceError as exc:
            unavailable = exc.user_message
        cards.append({"module": module, "figures": figures, "unavailable": unavailable})
    return render(request, "home.html", {"cards": cards})


def health(request: HttpRequest) -> JsonResponse:
    sources = check_sources()
    portal_ok = next(s.ok for s in sources if s.name == "portal_db")
    body: dict[str, Any] = {
        "status": "ok" if all(s.ok for s in sources) else ("degraded" if portal_ok else "down"),
        "sources": {
            s.name: {"ok": s.ok, "latency_ms": s.latency_ms, **({"detail": s.detail} if request.user.is_staff else {})}
            for s in sources
        },
    }
    if portal_ok:  # the periodic tasks' last run and success (userportal.beat), from the portal database
        body["beat"] = beat.health(staff=request.user.is_staff)
    if request.user.is_staff:  # which instance and process answered (several may sit behind a balancer)
        body["instance"] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "process_group": str(request.META.get("mod_wsgi.process_group", "")),
        }
    return JsonResponse(body, status=200 if portal_ok else 503)


def periodic_tasks(request: HttpRequest) -> HttpResponse:
    """Staff: each periodic (beat) task's interval, runs, last run, success and failure, and lateness."""
    return render(request, "periodic_tasks.html", {"tasks": beat.statuses()})


@require_POST
def choose_cluster(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("cluster", "")
    if name in clusters():
        request.session[SESSION_KEY] = name
    target = request.POST.get("next") or reverse("home")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("home")
    return HttpResponseRedirect(target)


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = settings.OIDC_ENABLED
        context["ldap_enabled"] = settings.LDAP_ENABLED
        context["pam_enabled"] = settings.PAM_ENABLED
        context["dev_login"] = settings.DEBUG
        return context


def _error(
    request: HttpRequest, status: int, message: str, template: str, errors: InvalidInput | None = None
) -> HttpResponse:
    if wants_json(request):
        body: dict[str, Any] = {"detail": message, "status": status}
        if errors is not None:
            body["errors"] = errors.errors
        return JsonResponse(body, status=status)
    context: dict[str, Any] = {"message": message}
    if errors is not None:
        context["errors"] = errors.errors
        context["field_errors"] = [(errors.labels[name], messages) for name, messages in errors.errors.items()]
    return render(request, template, context, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    errors = exception if isinstance(exception, InvalidInput) else None
    return _error(request, 400, _("Bad request."), "400.html", errors)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403, _("You do not have access to this page."), "403.html")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 404, _("Not found."), "404.html")


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500, _("Internal error. The administrators have been told."), "500.html")


def robots_txt(request: HttpRequest) -> HttpResponse:
    return HttpResponse("User-agent: *\nDisallow: /\n", content_type="text/plain")
