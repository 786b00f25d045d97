"""The user summary page. Thin: who, then every registered section rendered on its own."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from userportal.clusters import current_cluster
from userportal.summary import SummaryContext
from usersummary import services


def index(request: HttpRequest) -> HttpResponse:
    return redirect("usersummary:user", username=request.user.get_username())


def user(request: HttpRequest, username: str) -> HttpResponse:
    portal_user = services.portal_user(username)
    if not services.user_exists(username, portal_user):
        raise Http404
    context = SummaryContext(username=username, viewer=request.user, cluster=current_cluster(request), user=portal_user)
    sections = services.render_sections(request, context)
    return render(request, "usersummary/user.html", {"subject": username, "sections": sections})
