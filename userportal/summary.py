"""The sections of the user summary (``/secure/usersummary/<user>/``), registered by the apps that own their data.

usersummary imports no feature app. Each app that has something to say about one user registers
a :class:`SummarySection` at start-up (its ``AppConfig.ready()`` calls :func:`register_section`);
the summary page renders every registered section of a module listed in ``PORTAL_MODULES``, in
``order``, and only staff see a ``staff_only`` one.

A section's ``build`` gets a :class:`SummaryContext` and returns the context of its template
(``template``, rendered inside the section's card). It must run a bounded number of queries,
whatever the amount of data (the page's query-count test adds them all up). When ``build`` or
its template raises, the page shows "unavailable: <source>" in that card and still answers 200:
no section may take the page down.

A sketch: ``myapp/summary.py`` declares its sections, ``apps.py`` registers them::

    SECTIONS = (SummarySection(key="myapp", module="myapp", title=_("My app"),
                               source=_("the portal database"), template="myapp/summary.html",
                               build=build, link=link, order=50),)

    def ready(self) -> None:                  # MyappConfig
        from myapp import summary
        register_section(*summary.SECTIONS)
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise


@dataclass(frozen=True)
class SummaryContext:
    """Whose summary is shown, to whom, on which cluster."""

    username: str  # the user the page is about
    viewer: Any  # request.user: the user themself, or staff
    cluster: str
    user: Any | None  # the portal's User row of ``username``; None when they never signed in

    @property
    def viewer_is_staff(self) -> bool:
        return bool(getattr(self.viewer, "is_staff", False))


@dataclass(frozen=True)
class SummarySection:
    key: str  # unique; the card's HTML id is "summary-<key>"
    module: str  # the PORTAL_MODULES name whose presence shows the section
    title: str | Promise
    source: str | Promise  # named when the section fails: "unavailable: <source>"
    template: str
    build: Callable[[SummaryContext], dict[str, Any]]
    link: Callable[[SummaryContext], str | None] | None = None  # the module's page about this user
    order: int = 100
    staff_only: bool = False


_sections: dict[str, SummarySection] = {}


def register_section(*sections: SummarySection) -> None:
    """Add (or replace, by key) sections of the user summary."""
    for section in sections:
        _sections[section.key] = section


def unregister_section(key: str) -> None:
    _sections.pop(key, None)


def sections_for(*, staff: bool, modules: Collection[str]) -> list[SummarySection]:
    """The sections a viewer sees: of an enabled module, staff-only ones for staff only, in order."""
    return sorted(
        (s for s in _sections.values() if s.module in modules and (staff or not s.staff_only)),
        key=lambda s: (s.order, s.key),
    )
