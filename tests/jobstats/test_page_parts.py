"""{% graph_figure %} and {% moment_time %} give the HTML of the includes they replaced (sources below, as they were)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.template import Context, Template
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

OLD_GRAPH = (
    '{% load i18n %}<figure class="graph-figure border rounded p-2 mb-0{% if graph.highlight %} graph-highlight{% endif %}"'
    ' data-graph-url="{{ graph.url }}" data-graph-name="{{ graph.spec.name }}" data-title="{{ graph.spec.title }}">\n'
    '  <div class="graph-plot" role="group" aria-label="{{ graph.spec.title }}"></div>\n'
    '  <figcaption class="small text-body-secondary mt-1" aria-live="polite">{{ graph.spec.title }}:'
    ' {% translate "loading…" %}</figcaption>\n</figure>\n'
)
OLD_TIME = (
    '{% if moment %}<time datetime="{{ moment|date:\'c\' }}">{{ moment|date:"Y-m-d H:i:s e" }}</time>'
    "{% else %}—{% endif %}\n"
)


@pytest.mark.parametrize("language", ["en", "fr", "th"])
@pytest.mark.parametrize("highlight", [True, False])
def test_graph_figure_is_the_old_include(language, highlight):
    graphs = [
        {
            "spec": SimpleNamespace(name="cpu", title=gettext_lazy("CPU cores")),
            "url": "/a/?x=1&y=2",
            "highlight": highlight,
        },
        {"spec": SimpleNamespace(name='we"ird', title="<Memory & co>"), "url": "/b/", "highlight": highlight},
    ]
    with translation.override(language):
        for graph in graphs:
            old = Template(OLD_GRAPH).render(Context({"graph": graph}))
            new = Template("{% load page_parts %}{% graph_figure graph %}").render(Context({"graph": graph}))
            assert new == old


@pytest.mark.parametrize("zone", ["UTC", "America/Toronto", "Asia/Bangkok"])
@pytest.mark.parametrize(
    "moment", [datetime(2026, 3, 8, 7, 30, 5, tzinfo=UTC), datetime(2026, 11, 1, 5, 59, 59, tzinfo=UTC), None]
)
def test_moment_time_is_the_old_include(zone, moment):
    with timezone.override(zone):
        old = Template(OLD_TIME).render(Context({"moment": moment}))
        new = Template("{% load page_parts %}{% moment_time moment %}").render(Context({"moment": moment}))
    assert new == old.removesuffix("\n")  # the include's file ended with a line break
    assert ("<time" in new) == (moment is not None)
