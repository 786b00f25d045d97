"""Billing roles from Slurm's AdminLevel (BILLING_ROLES_FROM_SLURM): Operator reads, Administrator administers.

Two groups belong to this module and to nothing else: `slurm-operators` (billing.view_receipt: the
billing staff pages, read-only) and `slurm-administrators` (that, billing.add_rate and
billing.change_receipt: rates and payments). Their members are exactly the portal users whose
Slurm AdminLevel says so: set at sign-in (a user_logged_in receiver) and re-checked by the beat
task `billing.sync_slurm_roles` every BILLING_ROLES_CHECK_MINUTES. They are not staff powers:
`manage.py staff_powers` never grants them, and hand-made members are removed at the next check.
With the setting off both groups are emptied. A source that does not answer changes nothing.

Billing's actions ask may(): staff holding the permission (a staff power), or a member of
`slurm-administrators` asking for one of that group's permissions — so a Slurm Administrator who is
not portal staff may change rates and mark receipts paid, and an Operator may not, even one still in
a staff-power group (billing-rates, billing-payments) from before they lost staff status.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

from slurm.admin_levels import elevated_levels
from slurm.models import AdminLevel
from userportal.errors import DataSourceError

logger = logging.getLogger(__name__)

READ = "billing.view_receipt"
OPERATORS = "slurm-operators"
ADMINISTRATORS = "slurm-administrators"
GROUPS = {
    OPERATORS: (READ,),
    ADMINISTRATORS: (READ, "billing.add_rate", "billing.change_receipt"),
}
LEVEL_GROUP = {AdminLevel.OPERATOR: OPERATORS, AdminLevel.ADMINISTRATOR: ADMINISTRATORS}


def may(user: Any, permission: str) -> bool:
    """Staff holding `permission`, or a Slurm Administrator (group) asking for one of its permissions."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_staff and user.has_perm(permission):
        return True
    return enabled() and permission in GROUPS[ADMINISTRATORS] and user.groups.filter(name=ADMINISTRATORS).exists()


def require(user: Any, permission: str) -> None:
    if not may(user, permission):
        raise PermissionDenied(f"This needs the permission {permission} (a staff power or a Slurm AdminLevel).")


def _groups() -> dict[str, Group]:
    groups = {}
    for name, dotted in GROUPS.items():
        group, _created = Group.objects.get_or_create(name=name)
        wanted = []
        for item in dotted:
            app_label, codename = item.split(".", 1)
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
        groups[name] = group
    return groups


def _apply(user: Any, level: AdminLevel | None, groups: dict[str, Group]) -> bool:
    """Put `user` in the group of `level` and out of the other; whether anything changed."""
    wanted = LEVEL_GROUP.get(level) if level is not None else None
    current = set(user.groups.filter(name__in=list(GROUPS)).values_list("name", flat=True))
    target = {wanted} if wanted else set()
    if current == target:
        return False
    user.groups.remove(*(groups[name] for name in current - target))
    user.groups.add(*(groups[name] for name in target - current))
    logger.info("billing roles: %s now %s (Slurm AdminLevel)", user.get_username(), sorted(target) or "none")
    return True


def enabled() -> bool:
    return bool(getattr(settings, "BILLING_ROLES_FROM_SLURM", False))


def sync_user(user: Any) -> bool:
    """Bring one user's Slurm role groups in line with their AdminLevel now; whether anything changed."""
    if not enabled():  # one query at sign-in while the setting is off
        held = list(Group.objects.filter(name__in=list(GROUPS), user=user))
        user.groups.remove(*held)
        return bool(held)
    try:
        levels = elevated_levels(settings.BILLING_ROLES_SOURCE, [user.get_username()])
    except DataSourceError as exc:
        logger.warning("billing roles: AdminLevel of %s unknown (%s): unchanged", user.get_username(), exc)
        return False
    return _apply(user, levels.get(user.get_username()), _groups())


def sync_all() -> dict[str, str]:
    """Every portal user's role groups against Slurm (one read of every elevated level): {user: group or ""} changed."""
    User = get_user_model()
    if not enabled():  # empty the groups if they exist; never create them
        emptied = {}
        for group in Group.objects.filter(name__in=list(GROUPS)):
            for user in group.user_set.all():
                emptied[user.get_username()] = ""
            group.user_set.clear()
        return emptied
    levels = elevated_levels(settings.BILLING_ROLES_SOURCE)  # raises when the source is down: nothing changes
    groups = _groups()
    holders = set(User.objects.filter(groups__name__in=list(GROUPS)).values_list("pk", flat=True))
    candidates = User.objects.filter(pk__in=holders) | User.objects.filter(username__in=list(levels))
    changed = {}
    for user in candidates.distinct():
        level = levels.get(user.get_username())
        if _apply(user, level, groups):
            changed[user.get_username()] = LEVEL_GROUP.get(level, "") if level else ""
    return changed


def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """user_logged_in: the roles as Slurm says now (a source that does not answer changes nothing)."""
    if user is None or not getattr(user, "pk", None):
        return
    sync_user(user)
