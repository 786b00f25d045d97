"""Staff powers: is_staff opens the staff pages, each change needs its own permission.

Staff status alone used to change billing rates, mark receipts paid, accept GPU priorities (which
runs sacctmgr in automatic mode), read the audit log and upload job scripts. Now plain staff see
the staff pages read-only, and each of these needs a Django permission, given through one group
per power. Each app declares its powers on its AppConfig:

    staff_powers = {"billing-rates": ("Change billing rates", ("billing.add_rate",))}

`manage.py staff_powers` creates the groups with their permissions and grants or revokes them;
the admin edits the same groups. Superusers hold every permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied


@dataclass(frozen=True)
class Power:
    name: str  # the group's name
    description: str
    permissions: tuple[str, ...]  # "app_label.codename"


def powers() -> dict[str, Power]:
    """Every app's declared powers, by name."""
    found: dict[str, Power] = {}
    for config in apps.get_app_configs():
        for name, (description, permissions) in getattr(config, "staff_powers", {}).items():
            found[name] = Power(name, description, tuple(permissions))
    return dict(sorted(found.items()))


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def ensure_groups() -> dict[str, Group]:
    """The group of each power, created if missing, holding exactly its permissions."""
    groups = {}
    for power in powers().values():
        group, _created = Group.objects.get_or_create(name=power.name)
        group.permissions.set([_permission(p) for p in power.permissions])
        groups[power.name] = group
    return groups


def grant(user: Any, names: list[str]) -> None:
    groups = ensure_groups()
    user.groups.add(*(groups[name] for name in names))


def revoke(user: Any, names: list[str]) -> None:
    groups = ensure_groups()
    user.groups.remove(*(groups[name] for name in names))


def may(user: Any, permission: str) -> bool:
    """Whether `user` is staff holding `permission` (superusers hold all)."""
    return bool(user.is_authenticated and user.is_staff and user.has_perm(permission))


def require(user: Any, permission: str) -> None:
    """PermissionDenied (a 403) unless `user` may (see may())."""
    if not may(user, permission):
        raise PermissionDenied(
            f"This needs the permission {permission}: ask an administrator (manage.py staff_powers)."
        )
