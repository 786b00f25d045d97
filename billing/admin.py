"""Billing in Django's admin: staff edit tiers, rates, GPU factors, account tiers and budgets.

Rates are history: a row already in force is read-only (jobs and receipts were priced with it);
a change is a new row valid from a date, as ``/billing/formula`` POST does. Receipts are
read-only except their paid status, which goes through billing.ledger.mark_paid (audited).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing import ledger
from billing.models import AccountTier, Budget, GpuFactor, Rate, Receipt, Tier
from userportal.audit import audit


class RateInline(admin.TabularInline):
    model = Rate
    extra = 0
    fields = ("resource", "price", "valid_from", "created_by", "created_at")
    readonly_fields = ("resource", "price", "valid_from", "created_by", "created_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # new rates through the Rate page (audited), not inline


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "position")
    search_fields = ("slug", "name")
    inlines = [RateInline]


@admin.register(Rate)
class RateAdmin(admin.ModelAdmin):
    list_display = ("tier", "resource", "price", "valid_from", "created_by", "created_at")
    list_filter = ("tier", "resource")
    date_hierarchy = "valid_from"
    fields = ("tier", "resource", "price", "valid_from", "created_by", "created_at")
    readonly_fields = ("created_by", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Rate | None = None) -> tuple[str, ...]:
        if obj is not None and obj.valid_from <= timezone.now():
            return ("tier", "resource", "price", "valid_from", "created_by", "created_at")  # in force: history
        return ("created_by", "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Rate | None = None) -> bool:
        return obj is None or obj.valid_from > timezone.now()  # only a rate not yet in force

    def save_model(self, request: HttpRequest, obj: Rate, form: Any, change: bool) -> None:
        if not obj.created_by:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)
        audit(
            "billing.rates.update",
            request=request,
            target=f"tier:{obj.tier_id}",
            extra={"after": {obj.resource: str(obj.price)}, "valid_from": obj.valid_from.isoformat(), "via": "admin"},
        )


@admin.register(GpuFactor)
class GpuFactorAdmin(admin.ModelAdmin):
    list_display = ("gpu_type", "factor")


@admin.register(AccountTier)
class AccountTierAdmin(admin.ModelAdmin):
    list_display = ("account", "cluster", "tier")
    list_filter = ("cluster", "tier")
    search_fields = ("account",)


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ("account", "cluster", "amount", "start", "end")
    list_filter = ("cluster",)
    search_fields = ("account",)


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    list_display = ("pk", "username", "cluster", "total", "currency", "job_count", "status", "created_at", "paid_at")
    list_filter = ("status", "cluster")
    search_fields = ("username",)
    date_hierarchy = "created_at"
    actions = ["mark_paid"]
    fields = (
        "username", "cluster", "currency", "total", "job_count", "period_start", "period_end", "source",
        "rates", "created_at", "created_by", "status", "paid_at", "paid_by",
    )  # fmt: skip
    readonly_fields = tuple(f for f in fields if f != "status")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # receipts are made from jobs (the usage page, billing_receipts)

    def has_delete_permission(self, request: HttpRequest, obj: Receipt | None = None) -> bool:
        return False  # billed jobs stay billed: their items keep the job key

    def get_readonly_fields(self, request: HttpRequest, obj: Receipt | None = None) -> tuple[str, ...]:
        if obj is not None and obj.status == Receipt.Status.PAID:
            return self.fields  # paid is final
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Receipt, form: Any, change: bool) -> None:
        if change and "status" in form.changed_data and obj.status == Receipt.Status.PAID:
            obj.status = Receipt.Status.PENDING  # mark_paid makes the change, once, audited
            ledger.mark_paid(obj, request=request)

    @admin.action(description=_("Mark the selected receipts as paid"))
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Receipt]) -> None:
        done = sum(ledger.mark_paid(receipt, request=request) for receipt in queryset)
        self.message_user(request, _("%(count)d receipts marked as paid.") % {"count": done}, messages.SUCCESS)
