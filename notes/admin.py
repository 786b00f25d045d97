from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from notes.models import Note


@admin.register(Note)
class NoteAdmin(SimpleHistoryAdmin):
    list_display = ("pk", "title", "username", "account", "job_ref", "ticket", "author_name", "created", "deleted")
    list_filter = ("deleted", "cluster")
    search_fields = ("title", "text", "ticket", "username", "account", "job_ref")
    readonly_fields = ("job_id", "job_user", "author", "author_name", "deleted_at", "deleted_by")
