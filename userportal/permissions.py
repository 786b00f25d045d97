"""The DRF side of the access table (userportal.access)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from userportal.access import allowed, rule_for


class TableAccessPermission(BasePermission):
    """The DRF side of the access table: the default permission class of every API view."""

    message = "You do not have access to this resource."

    def has_permission(self, request: Any, view: Any) -> bool:
        rule = rule_for(request._request)
        if rule is None:
            return False
        return allowed(rule, request, dict(getattr(view, "kwargs", {}) or {}))
