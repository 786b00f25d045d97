"""Forms: bounds mirror the policy; the server-side check is extensions.policy.validate."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from extensions.policy import Policy


class ExtensionForm(forms.Form):
    hours = forms.IntegerField(label=_("How many more hours"), min_value=1)
    reason = forms.CharField(
        label=_("Why the job needs more time"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args: Any, policy: Policy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["hours"].widget.attrs["max"] = policy.max_hours
        self.fields["hours"].help_text = _("At most %(max)d hours, and %(total)d hours in all for one job.") % {
            "max": policy.max_hours,
            "total": policy.max_total_hours,
        }
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "form-control")


class AcceptForm(forms.Form):
    message = forms.CharField(
        label=_("Message to the user (optional)"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
    )


class RefuseForm(forms.Form):
    message = forms.CharField(
        label=_("Why the request is refused"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
    )
