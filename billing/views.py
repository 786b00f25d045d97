"""Billing pages, CSV files and the rates JSON. Thin: parse the form, call billing's use cases, render.

When every job source is down, pages render with a notice (DataSourceError) instead of a 500.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import budgets, exports, job_index, ledger, roles, services
from billing.costs import RESOURCES, aggregate, calculate, monthly_costs, to_money, totals
from billing.models import Budget, GpuFactor, Receipt, Tier
from slurm.jobsource.frame import JobQuery
from slurm.visibility import accounts_of
from userportal import powers
from userportal.clusters import current_cluster
from userportal.errors import DataSourceError
from userportal.forms import BoundedDateField, cleaned_or_400

PAGE_SIZE = 100
TABS = ("detail", "aggregate", "billed", "efficiency")


class UsageFilter(forms.Form):
    # Bounded: year 1 or 9999 overflowed the window arithmetic (a 500); now a 400 on the field.
    start = BoundedDateField(required=False, label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = BoundedDateField(required=False, label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))
    before = BoundedDateField(
        required=False, label=gettext_lazy("Completed before"), widget=forms.DateInput(attrs={"type": "date"})
    )


def _query(
    request: HttpRequest, *, user: str | None = None, account: str | None = None
) -> tuple[UsageFilter, JobQuery]:
    form = UsageFilter(request.GET or None)
    data = cleaned_or_400(form)
    start, end = services.window(data.get("start"), data.get("end"), data.get("before"))
    return form, JobQuery(start, end, current_cluster(request), user=user, account=account)


def _csv(body: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _jobs_rows(frame: Any) -> list[dict[str, Any]]:
    rows = frame.to_dict("records")
    for row in rows:
        row["cost"] = to_money(row["cost_minor"])
        row["unused"] = to_money(row["unused_minor"])
        row["elapsed_hours"] = row["elapsed"] / 3600
    return rows


def index(request: HttpRequest) -> HttpResponse:
    return redirect("billing:usage", username=request.user.get_username())


def usage(request: HttpRequest, username: str) -> HttpResponse:
    form, query = _query(request, user=username)
    tab = request.GET.get("tab", "detail")
    tab = tab if tab in TABS else "detail"
    context: dict[str, Any] = {"owner": username, "form": form, "tab": tab, "tabs": TABS, "query": query}
    context["currency"] = settings.BILLING_CURRENCY
    try:
        found = services.usage(query, cached=True)
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
        return render(request, "billing/usage.html", context)
    jobs = found.jobs
    if tab == "billed":
        jobs = found.billed
    context.update(source=found.source, failures=found.failures, totals=totals(jobs))
    context["unbilled_totals"] = found.totals("unbilled")
    if tab == "aggregate":
        context["groups"] = _group_rows(aggregate(jobs, ["account", "tier"]))
    elif tab == "efficiency":
        context["groups"] = _group_rows(aggregate(jobs, ["account"]))
        context["page"] = Paginator(
            _jobs_rows(jobs.sort_values("unused_minor", ascending=False).head(PAGE_SIZE)), PAGE_SIZE
        ).get_page(1)
    else:
        ordered = jobs.sort_values(["end", "job_id"], ascending=False)
        paginator = Paginator(range(len(ordered)), PAGE_SIZE)
        page = paginator.get_page(request.GET.get("page"))
        context["page"] = page
        context["rows"] = _jobs_rows(ordered.iloc[page.start_index() - 1 if len(ordered) else 0 : page.end_index()])
    return render(request, "billing/usage.html", context)


def _group_rows(frame: Any) -> list[dict[str, Any]]:
    rows = frame.to_dict("records")
    for row in rows:
        row["cost"] = to_money(row["cost_minor"])
        row["unused"] = to_money(row["unused_minor"])
    return rows


def usage_csv(request: HttpRequest, username: str) -> HttpResponse:
    _form, query = _query(request, user=username)
    try:
        found = services.usage(query, cached=True)
    except DataSourceError as exc:
        return HttpResponse(str(exc.user_message), status=exc.status_code, content_type="text/plain; charset=utf-8")
    return _csv(exports.usage_csv(found.jobs), f"usage-{username}.csv")


def receipts(request: HttpRequest, username: str) -> HttpResponse:
    if request.method == "POST":
        return _create_receipt(request, username)
    form = _query(request, user=username)[0]
    context = {"owner": username, "receipts": ledger.receipts_of(username), "form": form}
    context["currency"] = settings.BILLING_CURRENCY
    return render(request, "billing/receipts.html", context)


def _create_receipt(request: HttpRequest, username: str) -> HttpResponse:
    if username != request.user.get_username() and not request.user.is_staff:
        raise PermissionDenied
    data = cleaned_or_400(UsageFilter(request.POST))
    start, end = services.window(data.get("start"), data.get("end"), data.get("before"))
    query = JobQuery(start, end, current_cluster(request), user=username)
    try:
        receipt = ledger.create_receipt(username, query, request=request)
    except ledger.NothingToBill:
        messages.info(request, _("There are no unbilled jobs in this period."))
    except ledger.AlreadyBilled:
        messages.error(request, _("Some of these jobs were billed by another request at the same time. Try again."))
    except DataSourceError as exc:
        messages.error(request, str(exc.user_message))
    else:
        messages.success(request, _("Receipt %(number)s created.") % {"number": receipt.pk})
        return redirect("billing:receipt", username=username, receipt_id=receipt.pk)
    return redirect("billing:receipts", username=username)


def _receipt(username: str, receipt_id: int) -> Receipt:
    return get_object_or_404(Receipt, pk=receipt_id, username=username)


def receipt(request: HttpRequest, username: str, receipt_id: int) -> HttpResponse:
    found = _receipt(username, receipt_id)
    items = Paginator(found.items.all(), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"owner": username, "receipt": found, "items": items, **ledger.receipt_summary(found)}
    return render(request, "billing/receipt.html", context)


def receipt_print(request: HttpRequest, username: str, receipt_id: int) -> HttpResponse:
    found = _receipt(username, receipt_id)
    context = {"owner": username, "receipt": found, "items": found.items.all(), **ledger.receipt_summary(found)}
    return render(request, "billing/receipt_print.html", context)


def receipt_csv(request: HttpRequest, username: str, receipt_id: int) -> HttpResponse:
    return _csv(exports.receipt_csv(_receipt(username, receipt_id)), f"receipt-{receipt_id}.csv")


# --- rates -----------------------------------------------------------------------------------
def formula(request: HttpRequest) -> HttpResponse:
    """GET ?type=<tier>: current rates (JSON). POST (staff): new rates for the tier, audited."""
    if request.method == "POST":
        return _formula_post(request)
    slug = request.GET.get("type") or settings.BILLING_DEFAULT_TIER
    tier = Tier.objects.filter(slug=slug).first()
    if tier is None:
        return JsonResponse(
            {"detail": _("Unknown tier."), "tiers": list(Tier.objects.values_list("slug", flat=True))}, status=404
        )
    return JsonResponse(services.current_rates(tier))


def _formula_post(request: HttpRequest) -> HttpResponse:
    roles.require(request.user, "billing.add_rate")
    wants_json = request.content_type == "application/json"
    try:
        data = json.loads(request.body) if wants_json else request.POST
    except ValueError:
        return JsonResponse(
            {"detail": _("The body is not JSON."), "errors": {"body": [_("The body is not JSON.")]}}, status=400
        )
    if not isinstance(data, dict | QueryDict):
        message = _('The body must be a JSON object of rates, e.g. {"type": "gov", "cpu": "1.5"}.')
        return JsonResponse({"detail": message, "errors": {"body": [message]}}, status=400)
    slug = data.get("type", "")
    tier = Tier.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    errors: dict[str, str] = {}
    new: dict[str, Decimal] = {}
    for resource in RESOURCES:
        raw = data.get(resource)
        if raw in (None, ""):
            continue
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            errors[resource] = _("Not a number.")
            continue
        if not value.is_finite():  # NaN, Infinity, or a JSON number too large for a float
            errors[resource] = _("Not a number.")
            continue
        # the bound first: quantize() raises on a number with more digits than Decimal's precision
        if value < 0 or value >= Decimal("1e8") or value != value.quantize(Decimal("0.0001")):
            errors[resource] = _("Give a price of at least 0 with at most four decimals.")
        else:
            new[resource] = value
    if tier is None:
        errors["type"] = _("Unknown tier.")
    if not new and not errors:
        errors["rates"] = _("Give at least one rate.")
    if errors:
        if wants_json:
            return JsonResponse({"errors": errors}, status=400)
        for message in errors.values():
            messages.error(request, message)
        return redirect("billing:staff_rates")
    assert tier is not None
    services.set_rates(tier, new, request=request)
    if wants_json:
        return JsonResponse(services.current_rates(tier))
    messages.success(request, _("New rates for %(tier)s are in force.") % {"tier": tier.name})
    return redirect(reverse("billing:staff_rates") + f"?type={tier.slug}")


def playground(request: HttpRequest) -> HttpResponse:
    tiers = list(Tier.objects.all())
    config = {
        "formula_url": reverse("billing:formula"),
        "currency": settings.BILLING_CURRENCY,
        "labels": {"cpu": _("CPU"), "gpu": _("GPU"), "mem": _("Memory"), "total": _("Total")},
    }
    result = None
    tier = next((t for t in tiers if t.slug == request.GET.get("type")), tiers[0] if tiers else None)
    if tier is not None and request.GET.get("cpu_hours") is not None:  # works without JavaScript
        rates = services.current_rates(tier)
        try:
            values = {k: Decimal(request.GET.get(k) or "0") for k in ("cpu_hours", "gpu_hours", "mem_gb_hours")}
            if not all(value.is_finite() for value in values.values()):  # Decimal reads "NaN" and "Infinity"
                raise InvalidOperation
            factor = Decimal(rates["gpu_factors"].get(request.GET.get("gpu_type", ""), "1"))
            result = calculate({k: Decimal(v) for k, v in rates["rates"].items()}, gpu_factor=factor, **values)
        except InvalidOperation:
            messages.error(request, _("Give numbers of hours."))
    context = {"tiers": tiers, "tier": tier, "config": config, "result": result, "currency": settings.BILLING_CURRENCY}
    context["gpu_types"] = list(GpuFactor.objects.values_list("gpu_type", flat=True))
    return render(request, "billing/playground.html", context)


# --- forecasts -------------------------------------------------------------------------------
def forecasts(request: HttpRequest) -> HttpResponse:
    cluster = current_cluster(request)
    if request.user.is_staff:
        accounts = sorted(set(Budget.objects.filter(cluster=cluster).values_list("account", flat=True)))
    else:
        accounts = accounts_of(request.user.get_username(), cluster)
    context: dict[str, Any] = {"forecasts": [], "currency": settings.BILLING_CURRENCY}
    try:
        context["forecasts"] = [budgets.forecast(account, cluster) for account in accounts]
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "billing/forecasts.html", context)


def account_forecast(request: HttpRequest, account: str) -> HttpResponse:
    context: dict[str, Any] = {"account": account, "currency": settings.BILLING_CURRENCY}
    try:
        context["forecasts"] = [budgets.forecast(account, current_cluster(request))]
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "billing/forecasts.html", context)


def account_balance(request: HttpRequest, account: str) -> HttpResponse:
    try:
        return JsonResponse(budgets.ood_balance([budgets.forecast(account, current_cluster(request))]))
    except DataSourceError as exc:
        return JsonResponse({"detail": str(exc.user_message)}, status=exc.status_code)


def balance(request: HttpRequest) -> HttpResponse:
    cluster = current_cluster(request)
    accounts = sorted(set(Budget.objects.filter(cluster=cluster).values_list("account", flat=True)))
    try:
        return JsonResponse(budgets.ood_balance([budgets.forecast(a, cluster) for a in accounts]))
    except DataSourceError as exc:
        return JsonResponse({"detail": str(exc.user_message)}, status=exc.status_code)


# --- staff -----------------------------------------------------------------------------------
def staff_rates(request: HttpRequest) -> HttpResponse:
    tiers = list(Tier.objects.all())
    tier = next((t for t in tiers if t.slug == request.GET.get("type")), tiers[0] if tiers else None)
    context: dict[str, Any] = {"tiers": tiers, "tier": tier, "rates": services.current_rates(tier) if tier else None}
    context["history"] = list(tier.rates.all()[:30]) if tier else []
    context["currency"] = settings.BILLING_CURRENCY
    context["may_change"] = roles.may(request.user, "billing.add_rate")
    return render(request, "billing/staff_rates.html", context)


def staff_usage(request: HttpRequest) -> HttpResponse:
    form, query = _query(request)
    tab = request.GET.get("tab", "aggregate")
    context: dict[str, Any] = {"form": form, "tab": tab, "query": query, "currency": settings.BILLING_CURRENCY}
    context["job_index"] = job_index.status(query.cluster)  # its lag, shown with the figures
    try:
        found = services.usage(query, cached=True)
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
        return render(request, "billing/staff_usage.html", context)
    context.update(source=found.source, totals=totals(found.jobs))
    context["by_user"] = _group_rows(aggregate(found.jobs, ["user"]))
    context["by_account"] = _group_rows(aggregate(found.jobs, ["account", "tier"]))
    ordered = found.jobs.sort_values(["end", "job_id"], ascending=False)
    page = Paginator(range(len(ordered)), PAGE_SIZE).get_page(request.GET.get("page"))
    context["page"] = page
    context["rows"] = _jobs_rows(ordered.iloc[page.start_index() - 1 if len(ordered) else 0 : page.end_index()])
    return render(request, "billing/staff_usage.html", context)


def staff_usage_csv(request: HttpRequest) -> HttpResponse:
    _form, query = _query(request)
    try:
        found = services.usage(query, cached=True)
    except DataSourceError as exc:
        return HttpResponse(str(exc.user_message), status=exc.status_code, content_type="text/plain; charset=utf-8")
    return _csv(exports.usage_csv(found.jobs), "usage-all.csv")


def staff_receipts(request: HttpRequest) -> HttpResponse:
    context = {
        "pending": ledger.pending_receipts(),
        "paid": list(Receipt.objects.filter(status=Receipt.Status.PAID).order_by("-paid_at")[:50]),
        "may_change": roles.may(request.user, "billing.change_receipt"),
    }
    return render(request, "billing/staff_receipts.html", context)


def mark_paid(request: HttpRequest, receipt_id: int) -> HttpResponse:
    if request.method != "POST":
        return redirect("billing:staff_receipts")
    roles.require(request.user, "billing.change_receipt")
    found = get_object_or_404(Receipt, pk=receipt_id)
    if ledger.mark_paid(found, request=request):
        messages.success(request, _("Receipt %(number)s is marked as paid.") % {"number": found.pk})
    else:
        messages.info(request, _("Receipt %(number)s was already paid.") % {"number": found.pk})
    return redirect("billing:staff_receipts")


def paid_csv(request: HttpRequest) -> HttpResponse:
    return _csv(exports.paid_csv(), "paid.csv")


class AuditFilter(forms.Form):
    # Bounded: SQLite refuses a LIKE pattern over 50,000 bytes ("pattern too complex", a 503).
    action = forms.CharField(required=False, max_length=200, label=gettext_lazy("Action starts with"))
    actor = forms.CharField(required=False, max_length=200, label=gettext_lazy("Actor"))
    target = forms.CharField(required=False, max_length=200, label=gettext_lazy("Target contains"))
    status = forms.CharField(required=False, max_length=200, label=gettext_lazy("Status"))
    since = forms.DateField(required=False, label=gettext_lazy("Since"), widget=forms.DateInput(attrs={"type": "date"}))


def _audit_entries(request: HttpRequest) -> tuple[AuditFilter, Any]:
    powers.require(request.user, "userportal.view_auditentry")
    form = AuditFilter(request.GET or None)
    filters = {k: v for k, v in form.cleaned_data.items() if v} if form.is_valid() else {}
    return form, exports.audit_entries(**filters)


def staff_audit(request: HttpRequest) -> HttpResponse:
    form, entries = _audit_entries(request)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "billing/staff_audit.html", {"form": form, "page": page})


def staff_audit_csv(request: HttpRequest) -> HttpResponse:
    _form, entries = _audit_entries(request)
    return _csv(exports.audit_csv(entries[:100_000].iterator()), "audit.csv")


def staff_charts(request: HttpRequest) -> HttpResponse:
    form = _query(request)[0]
    return render(
        request, "billing/staff_charts.html", {"form": form, "data_url": reverse("billing:staff_charts_json")}
    )


def staff_charts_json(request: HttpRequest) -> HttpResponse:
    data = cleaned_or_400(UsageFilter(request.GET or None))
    today = timezone.now().date()
    start = data.get("start") or today.replace(day=1).replace(year=today.year - 1)
    start_dt, end_dt = services.window(start, data.get("end"))
    try:
        found = services.usage(JobQuery(start_dt, end_dt, current_cluster(request)), cached=True)
    except DataSourceError as exc:
        return JsonResponse({"detail": str(exc.user_message)}, status=exc.status_code)
    return JsonResponse(
        {
            "currency": settings.BILLING_CURRENCY,
            "source": found.source,
            "by_tier": monthly_costs(found.jobs, "tier"),
            "by_account": monthly_costs(found.jobs, "account"),
        }
    )
