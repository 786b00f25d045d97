from django.contrib import admin

from extensions.models import ExtensionRequest


@admin.register(ExtensionRequest)
class ExtensionRequestAdmin(admin.ModelAdmin):
    list_display = ("pk", "job_id", "requester", "hours", "status", "created")
    list_filter = ("status", "cluster")
    search_fields = ("job_id", "requester__username", "reason")
