from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notes"
    verbose_name = _("Staff notes")
    # userportal.powers: plain staff read the notes; writing, changing and deleting them needs this group.
    staff_powers = {"note-writers": ("Write, change and delete staff notes", ("notes.add_note", "notes.change_note"))}

    def ready(self) -> None:
        from notes import summary
        from userportal.annotations import register_annotator
        from userportal.search import register_search_provider
        from userportal.summary import register_section

        register_section(*summary.SECTIONS)  # staff notes on the user summary
        register_annotator("notes", summary.annotate)  # "N staff notes" beside users, accounts and jobs
        register_search_provider(summary.SEARCH)  # notes and their tickets in the staff search
