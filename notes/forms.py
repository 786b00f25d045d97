"""The note form: every field checked on create and on update, the subjects against the Slurm database."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from notes.services import MAX_TEXT, Subject, check_subject


class NoteForm(forms.Form):
    username = forms.CharField(label=_("User"), max_length=150, required=False)
    account = forms.CharField(label=_("Slurm account"), max_length=255, required=False)
    job = forms.CharField(
        label=_("Job"),
        max_length=32,
        required=False,
        help_text=_("1234, 1234_7 (array task) or 1240+1 (het component)"),
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    text = forms.CharField(label=_("Text"), max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 8}))
    ticket = forms.CharField(label=_("Ticket"), max_length=200, required=False)

    def __init__(self, *args: Any, cluster: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        self.subject: Subject | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if any(name in self.errors for name in ("username", "account", "job")):
            return data
        try:
            self.subject = check_subject(
                cluster=self.cluster,
                username=data.get("username", ""),
                account=data.get("account", ""),
                job=data.get("job", ""),
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    for error in errors:
                        self.add_error(field, error)
            else:
                raise
        return data
