"""``{% job_rows jobs owner %}``: the rows of the user page's jobs table, built in Python.

The table used to be a template loop with an include per row; rendering its 50 rows was half
of the page's time. These rows are the same HTML (tests compare them with the template's), made
from the job records themselves: only what the table shows is decoded (services.job_summary
also sums TRES, memory and GPUs).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from html import escape  # django.utils.html.escape's own escaping, without its lazy-string wrapper
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from slurm.decoders import StateInfo, decode_state, epoch_set, format_timelimit
from slurm.hostlists import hostlist_size
from slurm.templatetags.states import badge

register = template.Library()


def _time(epoch: int | None, zone: tzinfo) -> str:
    if not epoch_set(epoch):
        return ""
    stamp = datetime.fromtimestamp(epoch, zone).isoformat()  # timezone.localtime(), the zone looked up once per table
    return f'<time datetime="{stamp}">{stamp[:10]} {stamp[11:16]}</time>'  # YYYY-MM-DD HH:MM


@register.simple_tag
def job_rows(jobs: Iterable[Any], owner: str) -> SafeString:
    """The rows of ``jobs``: job records with the columns of services.LIST_COLUMNS."""
    one = reverse("jobstats:job", kwargs={"username": owner, "job_id": 1})
    prefix = escape(one[: -len("1/")])  # the path ends with the job id and a slash
    user = escape(owner)
    zone = timezone.get_current_timezone()
    badges: dict[StateInfo, str] = {}  # a page has a handful of distinct states, limits and node lists
    limits: dict[int | None, str] = {}
    nodes: dict[str | None, int] = {}
    rows = []
    for job in jobs:
        state = decode_state(job.state)
        if state not in badges:
            badges[state] = badge(state)
        if job.timelimit not in limits:
            limits[job.timelimit] = escape(format_timelimit(job.timelimit))
        if job.nodelist not in nodes:
            nodes[job.nodelist] = hostlist_size(job.nodelist)
        rows.append(
            f'<tr>\n      <td><a href="{prefix}{int(job.id_job)}/">{escape(job.display_id)}</a></td>\n'
            f'      <td class="text-break">{escape(job.job_name or "")}</td><td>{user}</td>'
            f"<td>{escape(job.account or '')}</td><td>{escape(job.partition or '')}</td>\n"
            f"      <td>{badges[state]}</td>\n      <td>{_time(job.time_submit, zone)}</td>\n"
            f"      <td>{_time(job.time_start, zone)}</td>\n      <td>{_time(job.time_end, zone)}</td>\n"
            f"      <td>{limits[job.timelimit]}</td>"
            f'<td class="text-break">{nodes[job.nodelist]}</td>\n    </tr>'
        )
    return mark_safe("\n".join(rows))  # noqa: S308 - every value above is escaped or an int
