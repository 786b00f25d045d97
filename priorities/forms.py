"""Forms: bounds mirror the policy (min/max attributes); the server-side check is policy.validate_request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from priorities import bugzilla
from priorities.policy import Policy, RequestData, parse_usernames, validate_request
from userportal.forms import BoundedDateTimeField


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class PriorityRequestForm(forms.Form):
    account = forms.ChoiceField(label=_("Slurm account"))
    gpu_type = forms.ChoiceField(label=_("GPU type"))
    gpu_count = forms.IntegerField(label=_("Number of GPUs"), min_value=1)
    # Bounded: a start near year 1 or 9999 overflowed the policy's date arithmetic (a 500).
    start = BoundedDateTimeField(
        label=_("Start"), widget=DateTimeLocalInput(), input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
    )
    duration_days = forms.IntegerField(label=_("Duration (days)"), min_value=1)
    justification = forms.CharField(label=_("Justification"), widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)
    ticket = forms.CharField(
        label=_("Ticket"),
        max_length=200,
        help_text=_("The Bugzilla ticket number or link where the PI approved the request."),
    )
    users = forms.CharField(
        label=_("Other users"),
        required=False,
        max_length=2000,
        help_text=_("Users of the same account who share the priority, separated by commas or spaces."),
    )

    def __init__(
        self, *args: Any, username: str, cluster: str, accounts: list[str], gpu_types: list[str], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.username, self.cluster = username, cluster
        self.ticket_info: bugzilla.Ticket | None = None  # what Bugzilla said of the ticket (clean())
        self.policy = Policy.from_settings()
        cast(forms.ChoiceField, self.fields["account"]).choices = [(a, a) for a in accounts]
        cast(forms.ChoiceField, self.fields["gpu_type"]).choices = [(t, t) for t in gpu_types]
        self.fields["duration_days"].widget.attrs["max"] = self.policy.max_days
        self.fields["duration_days"].help_text = _("At most %(days)d days.") % {"days": self.policy.max_days}
        limits = [self.policy.request_limit(t) for t in gpu_types]
        known = [limit for limit in limits if limit is not None]
        if known:
            self.fields["gpu_count"].widget.attrs["max"] = max(known)
        if not self.is_bound:
            start = timezone.localtime() + timedelta(hours=1)
            self.initial.setdefault("start", start.replace(minute=0, second=0, microsecond=0))
            self.initial.setdefault("duration_days", min(7, self.policy.max_days))
            self.initial.setdefault("gpu_count", 1)
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", css)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        self.data_object = RequestData(
            account=cleaned["account"],
            gpu_type=cleaned["gpu_type"],
            gpu_count=cleaned["gpu_count"],
            start=cleaned["start"],
            duration_days=cleaned["duration_days"],
            justification=cleaned["justification"],
            ticket=cleaned["ticket"],
            users=[u for u in parse_usernames(cleaned.get("users", "")) if u != self.username],
        )
        for name, messages in validate_request(
            self.data_object, username=self.username, cluster=self.cluster, policy=self.policy
        ).items():
            for message in messages:
                self.add_error(name, message)
        if bugzilla.configured() and "ticket" not in self.errors:
            try:  # None: Bugzilla did not answer, the request is filed unchecked
                self.ticket_info = bugzilla.check(cleaned["ticket"])
            except bugzilla.TicketRefused as exc:
                self.add_error("ticket", str(exc))
        return cleaned


class AcceptForm(forms.Form):
    qos_name = forms.CharField(
        label=_("Priority name (QOS)"),
        max_length=64,
        help_text=_("Letters, digits, _ and -; not used by another priority or QOS."),
        widget=forms.TextInput(attrs={"class": "form-control", "pattern": "[A-Za-z0-9][A-Za-z0-9_-]*"}),
    )


class RefuseForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=5000, widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"})
    )


class MessageForm(forms.Form):
    text = forms.CharField(
        label=_("Message to the user"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
    )


class UsersForm(forms.Form):
    users = forms.CharField(
        label=_("Add users"), max_length=2000, widget=forms.TextInput(attrs={"class": "form-control"})
    )
