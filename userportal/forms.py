"""Form helpers shared by the feature apps: bounded dates, and invalid input as a 400.

Dates from a form end up as Unix timestamps, pandas timestamps (nanoseconds: up to 2262) and
date arithmetic (a window's start is 30 days before its end): year 1 or 9999 overflow all of
them. Every date a form accepts lies between FIRST_DAY and LAST_DAY, with an error on the field
otherwise.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from userportal.errors import InvalidInput

FIRST_DAY = date(1970, 1, 1)  # Slurm's timestamps start at the epoch
LAST_DAY = date(2200, 12, 31)


class BoundedDateField(forms.DateField):
    default_validators = [MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)]


class BoundedDateTimeField(forms.DateTimeField):
    default_validators = [
        MinValueValidator(datetime.combine(FIRST_DAY, time.min, tzinfo=UTC)),
        MaxValueValidator(datetime.combine(LAST_DAY, time.max, tzinfo=UTC)),
    ]


def cleaned_or_400(form: forms.Form) -> dict[str, Any]:
    """The form's cleaned data ({} when it was not submitted); InvalidInput (a 400) when invalid."""
    if not form.is_bound:
        return {}
    if not form.is_valid():
        labels = {name: field.label for name, field in form.fields.items()}
        raise InvalidInput(form.errors, labels)
    return form.cleaned_data
