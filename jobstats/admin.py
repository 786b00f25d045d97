"""Admin for uploaded job scripts: read-only (they are what Slurm ran), deletable, searchable by job id."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models.functions import Length
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from jobstats.models import JobScript


@admin.register(JobScript)
class JobScriptAdmin(admin.ModelAdmin):
    list_display = ("id_job", "cluster", "time_submit", "received_at", "uploaded_by", "size")
    list_filter = ("cluster", "received_at")
    search_fields = ("=id_job",)
    list_select_related = ("uploaded_by",)
    date_hierarchy = "received_at"
    fields = ("cluster", "id_job", "time_submit", "received_at", "uploaded_by", "submit_script")
    readonly_fields = fields
    show_full_result_count = False  # COUNT(*) over millions of scripts on every page is slow

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> Any:
        # The list needs the scripts' lengths, not the scripts (up to a megabyte each).
        return super().get_queryset(request).defer("submit_script").annotate(script_length=Length("submit_script"))

    @admin.display(description=_("characters"), ordering="script_length")
    def size(self, obj: Any) -> int:
        return int(obj.script_length or 0)
