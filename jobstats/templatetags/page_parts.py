"""``{% graph_figure graph %}`` and ``{% moment_time moment %}``: small parts of the jobs pages, built in Python.

They were includes (jobstats/includes/graph.html and time.html): an include pushes a context and
renders a template for a few lines of HTML, 0.2-0.3 ms each, and the job page had a dozen. The
HTML is the same (tests compare it with the old templates').
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

register = template.Library()


@register.simple_tag
def graph_figure(graph: dict[str, Any]) -> SafeString:
    """The figure a graph of ``graph["spec"]`` is drawn in by graphs.js (its data from ``graph["url"]``)."""
    spec = graph["spec"]
    title = conditional_escape(spec.title)
    highlight = " graph-highlight" if graph.get("highlight") else ""
    return mark_safe(  # noqa: S308 - every value is escaped
        f'<figure class="graph-figure border rounded p-2 mb-0{highlight}" data-graph-url="{conditional_escape(graph["url"])}"'
        f' data-graph-name="{conditional_escape(spec.name)}" data-title="{title}">\n'
        f'  <div class="graph-plot" role="group" aria-label="{title}"></div>\n'
        f'  <figcaption class="small text-body-secondary mt-1" aria-live="polite">{title}: '
        f"{conditional_escape(gettext('loading…'))}</figcaption>\n</figure>\n"
    )


@register.simple_tag
def moment_time(moment: datetime | None) -> SafeString:
    """``moment`` in the active time zone, to the second, with its zone's name; a dash when there is none."""
    if not moment:
        return mark_safe("—")
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    stamp = conditional_escape(date_format(local, "c"))
    return mark_safe(f'<time datetime="{stamp}">{conditional_escape(date_format(local, "Y-m-d H:i:s e"))}</time>')  # noqa: S308
