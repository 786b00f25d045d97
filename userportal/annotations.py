"""Marks an app puts beside a user, an account or a job on other apps' pages, without being imported by them.

The notes app registers an annotator at start-up (NotesConfig.ready() calls register_annotator):
given a kind (``"user"``, ``"account"`` or ``"job"``), keys (user names, account names, job ids as
text) and a cluster, it answers ``{key: [Annotation, ...]}`` in a bounded number of queries.
Pages ask through the ``annotations`` template tags (userportal/templatetags/annotations.py), for
staff only: jobstats' user and job pages, and top's tables (one call per table, not per row). An
annotator that raises is logged and skipped: a mark never takes a page down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

from django.conf import settings

logger = logging.getLogger(__name__)

Kind = Literal["user", "account", "job"]
KINDS: tuple[Kind, ...] = ("user", "account", "job")


@dataclass(frozen=True)
class Annotation:
    label: str  # short, shown in a badge ("2 staff notes")
    url: str  # where the details are
    title: str = ""  # the badge's tooltip


Annotator = Callable[[Kind, list[str], str], dict[str, list[Annotation]]]
_annotators: dict[str, tuple[str, Annotator]] = {}  # name: (its module in PORTAL_MODULES, annotator)


def register_annotator(module: str, annotator: Annotator) -> None:
    """Add (or replace) the annotator of ``module``; it is asked only while the module is in PORTAL_MODULES."""
    _annotators[module] = (module, annotator)


def unregister_annotator(module: str) -> None:
    _annotators.pop(module, None)


def annotations_for(kind: Kind, keys: Collection[str], *, cluster: str) -> dict[str, list[Annotation]]:
    """Every registered annotator's marks for ``keys`` of ``kind``, merged by key."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    wanted = sorted({str(key) for key in keys if key not in (None, "")})
    found: dict[str, list[Annotation]] = {}
    if not wanted:
        return found
    for name, (module, annotator) in sorted(_annotators.items()):
        if module not in settings.PORTAL_MODULES:
            continue
        try:
            marks = annotator(kind, wanted, cluster)
        except Exception:  # an annotator's failure must not break the page it decorates
            logger.exception("annotator %s failed for %s", name, kind)
            continue
        for key, items in marks.items():
            found.setdefault(key, []).extend(items)
    return found
