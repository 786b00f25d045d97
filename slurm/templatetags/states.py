"""``{% state_badge state %}``: a job or step state (slurm.decoders.StateInfo) as a coloured badge.

One definition for every table (templates/includes/state_badge.html calls it); the jobs table
of the user page renders its rows in Python (jobstats.templatetags.job_rows) and calls
``badge()`` directly.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from slurm.decoders import JobState, StateInfo

register = template.Library()

# Completed green, running blue, pending grey, cancelled amber, anything else (failed, OOM, timeout...) red.
BADGE_CLASSES = {
    JobState.COMPLETED: "text-bg-success",
    JobState.RUNNING: "text-bg-primary",
    JobState.PENDING: "text-bg-secondary",
    JobState.CANCELLED: "text-bg-warning",
}


def badge(state: StateInfo) -> SafeString:
    colour = BADGE_CLASSES.get(state.base, "text-bg-danger")
    if state.flags:
        return format_html(
            '<span class="badge state-badge {}" title="{}">{}</span>', colour, ", ".join(state.flags), state.label
        )
    return format_html('<span class="badge state-badge {}">{}</span>', colour, state.label)


@register.simple_tag
def state_badge(state: StateInfo) -> SafeString:
    return badge(state)
