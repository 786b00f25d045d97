"""The forms of outreach's pages: a user's opt-outs, and the staff's dry run."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from outreach.models import Preference
from outreach.rules import OutreachRule

USERNAME = RegexValidator(r"^[A-Za-z0-9._@+-]+$", _("Enter a user name (letters, digits and . _ @ + -)."))

CHECKBOX = forms.CheckboxInput(attrs={"class": "form-check-input"})


class PreferenceForm(forms.Form):
    """One box for every report, and one per rule in force (checked: the user gets it)."""

    receive = forms.BooleanField(required=False, label=_("Send me efficiency reports"), widget=CHECKBOX)

    def __init__(self, *args: Any, rules: list[OutreachRule], preference: Preference, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {"receive": not preference.opted_out, **{f"rule_{r.id}": r.id not in preference.rules_off for r in rules}},
        )
        super().__init__(*args, **kwargs)
        self.rules = rules
        for rule in rules:
            self.fields[f"rule_{rule.id}"] = forms.BooleanField(required=False, label=str(rule.title), widget=CHECKBOX)

    def rules_off(self) -> list[str]:
        return [rule.id for rule in self.rules if not self.cleaned_data.get(f"rule_{rule.id}")]


class DryRunForm(forms.Form):
    username = forms.CharField(
        required=False,
        max_length=150,
        validators=[USERNAME],
        label=_("Only this user (empty: everyone)"),
        widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}),
    )
