"""priorities' section of the user summary: the user's GPU priority requests, open ones first.

Registered with userportal.summary at start-up (PrioritiesConfig.ready()); two queries.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, IntegerField, Value, When
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from priorities.models import OPEN_STATUSES, PriorityRequest
from priorities.services import requests_of
from userportal.search import SearchHit, SearchProvider, rank
from userportal.summary import SummaryContext, SummarySection

SHOWN = 10


def build(context: SummaryContext) -> dict[str, Any]:
    requests = list(
        requests_of(context.username)
        .prefetch_related(None)
        .annotate(
            closed=Case(When(status__in=OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField())
        )
        .order_by("closed", "-start", "-pk")[: SHOWN + 1]
    )
    return {"requests": requests[:SHOWN], "more": len(requests) > SHOWN, "open_statuses": OPEN_STATUSES}


def link(context: SummaryContext) -> str:
    if context.viewer_is_staff:
        return reverse("priorities:staff") + "?" + urlencode({"q": context.username, "archived": "all"})
    return reverse("priorities:index")


SECTIONS = (
    SummarySection(
        key="priorities",
        module="priorities",
        title=_("GPU priorities"),
        source=_("the portal database"),
        template="priorities/summary.html",
        build=build,
        link=link,
        order=50,
    ),
)


def search(query: str, cluster: str, limit: int) -> list[SearchHit]:
    """The staff search's GPU priority requests whose ticket matches: one query."""
    rows = PriorityRequest.objects.filter(ticket__icontains=query).order_by("-created", "-pk")[:limit]
    return [
        SearchHit(
            "ticket",
            r.ticket,
            reverse("priorities:staff-detail", kwargs={"priority_id": r.pk}),
            _("GPU priority #%(id)d · %(account)s · %(status)s")
            % {"id": r.pk, "account": r.account, "status": r.get_status_display()},
            rank(r.ticket, query),
        )
        for r in rows
    ]


SEARCH = SearchProvider("priorities", _("the GPU priority requests"), search)
