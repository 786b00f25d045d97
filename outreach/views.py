"""outreach pages. Thin: parse with a form, call a service, render.

A user chooses which efficiency reports they get (``/secure/outreach/``, linked from every mail);
staff read what was sent and to whom, and run the rules without sending (the dry run).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from outreach import services
from outreach.forms import DryRunForm, PreferenceForm
from outreach.models import SentReport
from outreach.rules import RULES, rules_in_force
from userportal.clusters import current_cluster
from userportal.errors import DataSourceError

PAGE_SIZE = 50


def preferences(request: HttpRequest) -> HttpResponse:
    username = request.user.get_username()
    preference = services.preference_of(username)
    form = PreferenceForm(request.POST or None, rules=rules_in_force(), preference=preference)
    if request.method == "POST" and form.is_valid():
        shown = {rule.id for rule in form.rules}  # a rule switched off site-wide keeps the user's choice
        kept = [rule for rule in preference.rules_off if rule not in shown]
        services.save_preference(
            username, opted_out=not form.cleaned_data["receive"], rules_off=[*form.rules_off(), *kept]
        )
        messages.success(request, _("Your choice of reports is saved."))
        return HttpResponseRedirect(reverse("outreach:preferences"))
    recent = SentReport.objects.filter(username=username).prefetch_related("findings")[:10]
    return render(request, "outreach/preferences.html", {"form": form, "recent": recent, "rules": RULES})


def staff_index(request: HttpRequest) -> HttpResponse:
    username = request.GET.get("username", "")[:150]
    rule = request.GET.get("rule", "")
    rule = rule if rule in RULES else ""
    page: Page[SentReport] = Paginator(services.sent_reports(username=username, rule=rule), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "outreach/staff.html",
        {
            "page": page,
            "filters": {"username": username, "rule": rule},
            "query": query.urlencode(),
            "rules": RULES,
            "in_force": rules_in_force(),
            "form": DryRunForm(),
        },
    )


@require_POST
def staff_dry_run(request: HttpRequest) -> HttpResponse:
    form = DryRunForm(request.POST)
    if not form.is_valid():
        return render(request, "outreach/dry_run.html", {"form": form, "rules": RULES}, status=400)
    username = form.cleaned_data["username"]
    context: dict[str, object] = {"form": form, "rules": RULES}
    try:
        context["plan"] = services.plan(cluster=current_cluster(request), users=[username] if username else None)
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "outreach/dry_run.html", context)


def staff_report(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(SentReport.objects.prefetch_related("findings"), pk=report_id)
    return render(request, "outreach/report.html", {"report": report, "rules": RULES})
