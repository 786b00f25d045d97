"""The user page's job rows and the state badge, built in Python, equal what the templates rendered
(from services.job_summary's values: the rows are now made from the records themselves)."""

from __future__ import annotations

import re
import zoneinfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from jobstats.services import job_summary
from slurm.decoders import JobState, decode_state
from slurm.models import Tres

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

# The templates these replaced (jobstats/user.html's loop and includes/state_badge.html, before).
OLD_BADGE = (
    '<span class="badge state-badge {% if state.base.value == 3 %}text-bg-success{% elif state.base.value == 1 %}'
    "text-bg-primary{% elif state.base.value == 0 %}text-bg-secondary{% elif state.base.value == 4 %}text-bg-warning"
    '{% else %}text-bg-danger{% endif %}"{% if state.flags %} title="{{ state.flags|join:\', \' }}"{% endif %}>'
    "{{ state.label }}</span>"
)
OLD_ROWS = (
    "{% for job in jobs %}<tr>"
    "<td><a href=\"{% url 'jobstats:job' username=owner job_id=job.id_job %}\">{{ job.display_id }}</a></td>"
    '<td class="text-break">{{ job.name }}</td><td>{{ owner }}</td><td>{{ job.account }}</td><td>{{ job.partition }}</td>'
    "<td>{% with state=job.state %}" + OLD_BADGE + "{% endwith %}</td>"
    '<td>{% if job.submit %}<time datetime="{{ job.submit|date:\'c\' }}">{{ job.submit|date:"Y-m-d H:i" }}</time>{% endif %}</td>'
    '<td>{% if job.start %}<time datetime="{{ job.start|date:\'c\' }}">{{ job.start|date:"Y-m-d H:i" }}</time>{% endif %}</td>'
    '<td>{% if job.end %}<time datetime="{{ job.end|date:\'c\' }}">{{ job.end|date:"Y-m-d H:i" }}</time>{% endif %}</td>'
    '<td>{{ job.timelimit }}</td><td class="text-break">{{ job.nodes|length }}</td>'
    "</tr>{% endfor %}"
)


def squeezed(html: str) -> str:
    return re.sub(r">\s+<", "><", html.strip())


@pytest.mark.parametrize("zone", ["UTC", "Asia/Bangkok"])
def test_job_rows_equal_the_template_loop(personas, jobs, zone):
    s = personas.slurm
    s.job("owner", "def-owner", job_name='<b>"x" & y</b>', nodelist="node[01-03]", state=JobState.TIMEOUT | 0x8000)
    s.job("owner", "def-owner", job_name="", partition="", nodelist="None assigned", timelimit=0xFFFFFFFE)
    catalog = Tres.catalog()
    records = list(s.models.job.objects.order_by("job_db_inx"))
    summaries = [job_summary(job, catalog) for job in records]
    assert {job.state.base for job in summaries} >= {JobState.PENDING, JobState.RUNNING, JobState.COMPLETED}
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        old = Template("{% load i18n %}" + OLD_ROWS).render(Context({"jobs": summaries, "owner": "owner"}))
        new = Template("{% load job_rows %}{% job_rows jobs owner %}").render(
            Context({"jobs": records, "owner": "owner"})
        )
    assert "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;" in new
    assert squeezed(new) == squeezed(old)


@pytest.mark.parametrize("raw", [-1, 0, 1, 2, 3, 4, 5, 6, 11, 12, 0x400, 0x2000, 3 | 0x8000, 6 | 0x400 | 0x8000])
def test_state_badge_equals_the_old_template(raw):
    state = decode_state(raw)
    old = Template("{% load i18n %}" + OLD_BADGE).render(Context({"state": state}))
    new = Template('{% include "includes/state_badge.html" %}').render(Context({"state": state}))
    assert new.strip() == old.strip()
