"""Mail about extension requests: new ones to the staff, the decision to the job's owner."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from extensions.models import ExtensionRequest

logger = logging.getLogger(__name__)


def staff_recipients() -> list[str]:
    """Active staff with an address (who decides is a power; every staff member may follow the requests)."""
    User = get_user_model()
    return sorted(
        set(User.objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True))
    )


def send_on_commit(kind: str, extension: ExtensionRequest, recipients: list[str], **context: Any) -> None:
    """Render extensions/email/<kind>.txt now, send once the transaction commits (a rollback sends nothing)."""
    if not recipients:
        logger.info("extension %s: no address for the %s mail", extension.pk, kind)
        return
    context = {"extension": extension, "site_name": settings.PORTAL_SITE_NAME, **context}
    subject = " ".join(render_to_string(f"extensions/email/{kind}_subject.txt", context).split())
    body = render_to_string(f"extensions/email/{kind}.txt", context)
    transaction.on_commit(
        partial(send_mail, subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    )


def notify_requester(kind: str, extension: ExtensionRequest, **context: Any) -> None:
    email = extension.requester.email
    send_on_commit(kind, extension, [email] if email else [], **context)
