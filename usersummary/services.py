"""The user summary's own sections (identity, Slurm associations) and the page's assembly.

Every other section comes from the app that owns its data, through userportal.summary's registry.
The page renders each section inside its own try: a section that raises (its data source down, or
a bug) shows "unavailable: <source>" and the others still render.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from slurm.models import AdminLevel, SlurmUser
from slurm.visibility import uid_of
from userportal.errors import DataSourceError, SlurmDatabaseUnavailable
from userportal.models import ExternalIdentity
from userportal.summary import SummaryContext, SummarySection, sections_for
from usersummary.associations import Association, associations_of

logger = logging.getLogger(__name__)


# --- identity -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExternalLogin:
    kind: str
    issuer: str
    subject: str
    last_login: datetime | None


@dataclass(frozen=True)
class SlurmIdentity:
    uid: int | None
    admin_level: str


def portal_user(username: str) -> Any | None:
    return get_user_model().objects.filter(username=username).first()


def slurm_identity(username: str, cluster: str) -> SlurmIdentity | None:
    """The Slurm user row (admin level) and the uid the user's jobs run as; None when Slurm does not know them."""
    try:
        row = SlurmUser.objects.filter(name=username, deleted=0).only("name", "admin_level").first()
        uid = uid_of(username, cluster)
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    if row is None and uid is None:
        return None
    level = AdminLevel(row.admin_level).label if row is not None and row.admin_level in AdminLevel.values else ""
    return SlurmIdentity(uid, str(level))


def identity(context: SummaryContext) -> dict[str, Any]:
    user = context.user
    logins: list[ExternalLogin] = []
    groups: list[str] = []
    if user is not None:
        logins = [
            ExternalLogin(row.get_kind_display(), row.issuer, row.subject, row.last_login)
            for row in ExternalIdentity.objects.filter(user=user).order_by("kind")
        ]
        groups = sorted(user.groups.values_list("name", flat=True))
    return {
        "portal_user": user,
        "local_password": bool(user is not None and user.has_usable_password()),
        "logins": logins,
        "groups": groups,
        "ldap_enabled": settings.LDAP_ENABLED,
        "pam_enabled": settings.PAM_ENABLED,
        "slurm_identity": slurm_identity(context.username, context.cluster),
    }


def associations(context: SummaryContext) -> dict[str, Any]:
    try:
        rows: list[Association] = associations_of(context.username, context.cluster)
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    return {"associations": rows, "accountstats": "accountstats" in settings.PORTAL_MODULES}


def accountstats_link(context: SummaryContext) -> str | None:
    return reverse("accountstats:index") if "accountstats" in settings.PORTAL_MODULES else None


# --- the page -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderedSection:
    section: SummarySection
    html: SafeString | str
    link: str | None
    unavailable: str | Promise | None = None  # the source named when the section failed
    detail: str | Promise | None = None  # a data source's own notice, when it said why


def user_exists(username: str, user: Any | None) -> bool:
    """A summary is about a portal user or a Slurm user; any other name is a 404."""
    if user is not None:
        return True
    try:
        return SlurmUser.objects.filter(name=username).exists()
    except DatabaseError:
        return True  # the Slurm database is down: render the page, its sections say so


def render_sections(request: HttpRequest, context: SummaryContext) -> list[RenderedSection]:
    """Every section this viewer may see, each built and rendered on its own (a failure stays in its card)."""
    rendered = []
    staff = context.viewer_is_staff
    for section in sections_for(staff=staff, modules=settings.PORTAL_MODULES):
        link = None
        try:
            link = section.link(context) if section.link else None
            data = section.build(context)
            html = render_to_string(section.template, {**data, "summary": context}, request=request)
        except DataSourceError as exc:
            logger.warning("user summary section %s unavailable: %s", section.key, exc)
            rendered.append(RenderedSection(section, "", link, section.source, exc.user_message))
            continue
        except Exception:  # a section's bug must not take the page down
            logger.exception("user summary section %s failed", section.key)
            rendered.append(RenderedSection(section, "", link, section.source))
            continue
        rendered.append(RenderedSection(section, html, link))
    return rendered


SECTIONS = (
    SummarySection(
        key="identity",
        module="usersummary",
        title=_("Identity"),
        source=_("the portal database and the Slurm accounting database"),
        template="usersummary/sections/identity.html",
        build=identity,
        order=0,
    ),
    SummarySection(
        key="associations",
        module="usersummary",
        title=_("Slurm associations, limits, QOS and fair share"),
        source=_("the Slurm accounting database"),
        template="usersummary/sections/associations.html",
        build=associations,
        link=accountstats_link,
        order=10,
    ),
)
