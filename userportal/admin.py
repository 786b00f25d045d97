"""Admin for API tokens (who holds which, when last used, revocation), the audit log and external identities.

Tokens are issued by `manage.py create_service_account` and `drf_create_token`, which print the
key once; the admin never shows a key or its hash, and cannot create tokens (it would have to
display the key in a page or a message stored in the session).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from userportal.models import ApiToken, AuditEntry, ExternalIdentity


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "cluster", "created", "last_used", "expires", "revoked")
    list_filter = ("revoked", "cluster", "created", "last_used")
    search_fields = ("prefix", "user__username", "name")
    list_select_related = ("user",)
    ordering = ("-created",)
    fields = ("prefix", "user", "name", "created", "last_used", "expires", "revoked")
    readonly_fields = ("prefix", "user", "created", "last_used", "revoked")
    actions = ("revoke",)
    date_hierarchy = "created"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = queryset.filter(revoked=False).update(revoked=True)
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", count) % {"count": count},
            messages.SUCCESS,
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A revoked token stays revoked: un-revoking a key that may have leaked is not offered.
        if obj is not None and obj.revoked:
            return (*self.readonly_fields, "name", "expires")
        return self.readonly_fields


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only (userportal.audit)."""

    list_display = ("seq", "timestamp", "actor", "action", "target", "status", "ip")
    list_filter = ("action", "status")
    search_fields = ("actor", "action", "target", "path")
    date_hierarchy = "timestamp"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    """Which external identity opens which account. Deleting one lets the next identity with
    that username be bound (after a person left, or to move an account to a new identity)."""

    list_display = ("user", "kind", "issuer", "subject", "created", "last_login")
    list_filter = ("kind", "issuer")
    search_fields = ("user__username", "subject", "issuer")
    list_select_related = ("user",)
    readonly_fields = ("user", "kind", "issuer", "subject", "created", "last_login")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
