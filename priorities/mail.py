"""Mail about GPU priority requests: to the staff who decide, and to the users who share a priority."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from priorities import admins, bugzilla
from priorities.models import PriorityRequest
from priorities.qos import commands

logger = logging.getLogger(__name__)


def _emails_of(usernames: Iterable[str]) -> list[str]:
    User = get_user_model()
    return sorted(
        set(User.objects.filter(username__in=list(usernames)).exclude(email="").values_list("email", flat=True))
    )


def staff_recipients() -> list[str]:
    """The priority admins (manage.py priorities_admins), else every active staff user with an address."""
    return admins.mail_recipients()


def send_on_commit(kind: str, priority: PriorityRequest, recipients: list[str], **context: Any) -> None:
    """Render priorities/email/<kind>.txt now, send once the transaction commits (a rollback sends nothing)."""
    if not recipients:
        logger.info("priority %s: no address for the %s mail", priority.pk, kind)
        return
    context = {
        "priority": priority,
        "site_name": settings.PORTAL_SITE_NAME,
        "commands": commands(priority),
        "ticket_url": ticket_url(priority.ticket),
        **context,
    }
    subject = " ".join(render_to_string(f"priorities/email/{kind}_subject.txt", context).split())
    body = render_to_string(f"priorities/email/{kind}.txt", context)
    transaction.on_commit(
        partial(send_mail, subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    )


def notify_users(kind: str, priority: PriorityRequest, **context: Any) -> None:
    """Mail everyone who uses the priority (the requester and the users who share it)."""
    send_on_commit(kind, priority, _emails_of(priority.usernames()), **context)


def ticket_url(ticket: str) -> str:
    """A link for the ticket: itself when it is one, else PRIORITIES_TICKET_URL filled in ("" without it)."""
    ticket = (ticket or "").strip()
    if ticket.startswith(("http://", "https://")):
        return ticket
    template = settings.PRIORITIES_TICKET_URL
    if template and ticket:
        return template.format(ticket=ticket.lstrip("#"))
    return bugzilla.ticket_link(ticket)  # <PRIORITIES_BUGZILLA_URL>/show_bug.cgi?id=<n>, or ""
