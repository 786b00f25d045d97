"""The priority admins: who may accept, refuse and manage GPU priority requests, and who gets mail.

An admin is a member of the `priority-decisions` group (the staff power holding
priorities.change_priorityrequest, userportal.powers): `manage.py priorities_admins add` puts a
user there (as the seed's manage_admin.py did), `remove` takes them out, and `staff_powers` and
the Django admin edit the same group. Other staff open the panel read-only (no buttons; a POST
is a 403). Superusers decide too without being listed. Staff status still comes from sign-in:
an admin who is not staff cannot open the panel until they are.

Mail about new requests goes to the admins added with `add`, at the address given (a PriorityAdmin
row) or else their account's; when nobody is listed, to every active staff user with an address.
Members of the group granted with `staff_powers` decide without getting the mail.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from priorities.models import PriorityAdmin
from userportal import powers

POWER = "priority-decisions"
PERMISSION = "priorities.change_priorityrequest"


class NotAUser(LookupError):
    """The name is no portal account (people sign in once before they can be made admins)."""


@dataclass(frozen=True)
class Admin:
    username: str
    email: str  # where priority mail goes ("" = none)
    decides: bool  # in the priority-decisions group
    mailed: bool  # on the mail list (a PriorityAdmin row: added with this command)
    is_staff: bool


def add(username: str, email: str = "") -> bool:
    """Make `username` an admin who gets priority mail (at `email`, else their account's); whether they were not one."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotAUser(username)
    was = user.groups.filter(name=POWER).exists() and PriorityAdmin.objects.filter(username=username).exists()
    powers.grant(user, [POWER])
    PriorityAdmin.objects.update_or_create(username=username, defaults={"email": email or user.email})
    return not was


def remove(username: str) -> bool:
    """Take `username` out of the admins and the mail list; whether they were in either."""
    user = get_user_model().objects.filter(username=username).first()
    was = bool(user and user.groups.filter(name=POWER).exists())
    if user is not None:
        powers.revoke(user, [POWER])
    deleted, _rows = PriorityAdmin.objects.filter(username=username).delete()
    return was or bool(deleted)


def admins() -> list[Admin]:
    """Everyone who decides or gets the mail, by name."""
    User = get_user_model()
    rows = {row.username: row.email for row in PriorityAdmin.objects.all()}
    members = {u.get_username(): u for u in User.objects.filter(groups__name=POWER)}
    staff = set(User.objects.filter(username__in=list(rows), is_staff=True).values_list("username", flat=True))
    found = []
    for name in sorted(set(rows) | set(members)):
        user = members.get(name)
        email = rows[name] if name in rows else (user.email if user else "")
        is_staff = bool(user.is_staff) if user else name in staff
        found.append(Admin(name, email, user is not None, name in rows, is_staff))
    return found


def mail_recipients() -> list[str]:
    """The mail list's addresses (manage.py priorities_admins add), else every active staff user's."""
    emails = set(PriorityAdmin.objects.exclude(email="").values_list("email", flat=True))
    if emails:
        return sorted(emails)
    User = get_user_model()
    return sorted(
        set(User.objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True))
    )
