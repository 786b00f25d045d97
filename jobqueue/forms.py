from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from jobqueue.submission import NAME


class SubmitForm(forms.Form):
    code = forms.FileField(label=_("Python file"), help_text=_("A .py file, UTF-8."))
    competition_id = forms.RegexField(NAME, label=_("Competition"), max_length=100)
    project_id = forms.RegexField(NAME, label=_("Project"), max_length=100)
    expected_time = forms.IntegerField(label=_("Expected run time (seconds)"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["expected_time"]
        field.min_value = settings.JOBQUEUE_MIN_EXPECTED_TIME  # type: ignore[attr-defined]
        field.max_value = settings.JOBQUEUE_MAX_EXPECTED_TIME  # type: ignore[attr-defined]
        field.widget.attrs.update(min=field.min_value, max=field.max_value)  # type: ignore[attr-defined]
