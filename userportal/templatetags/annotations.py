"""Template tags for userportal.annotations: staff-only marks beside users, accounts and jobs.

{% load annotations %}
{% annotations "user" rows attr="user" as marks %}      {# one call for a whole table #}
{% for row in rows %}… {% annotation_badges marks row.user %}{% endfor %}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from userportal.annotations import Annotation, Kind, annotations_for
from userportal.clusters import current_cluster

register = template.Library()


@register.simple_tag(takes_context=True, name="annotations")
def annotations_of(context: template.Context, kind: Kind, keys: Any, attr: str = "") -> dict[str, list[Annotation]]:
    """The marks of ``keys`` (a value, or items whose ``attr`` is the key) for staff; {} for anyone else."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or not getattr(user, "is_staff", False):
        return {}
    items: Iterable[Any] = keys if isinstance(keys, list | tuple) else [keys]
    values = [getattr(item, attr, None) if attr else item for item in items]
    return annotations_for(kind, [str(v) for v in values if v not in (None, "")], cluster=current_cluster(request))


@register.inclusion_tag("includes/annotations.html")
def annotation_badges(marks: dict[str, list[Annotation]], key: Any) -> dict[str, Any]:
    return {"marks": marks.get(str(key), []) if marks else []}
