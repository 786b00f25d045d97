from django.contrib import admin

from quotas.models import Quota, QuotaAlert, UsageSnapshot


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ("group", "bytes_limit", "inodes_limit", "nearline_bytes_limit", "note")
    search_fields = ("group",)


@admin.register(UsageSnapshot)
class UsageSnapshotAdmin(admin.ModelAdmin):
    list_display = ("group", "day", "bytes_used", "inodes_used", "nearline_bytes")
    list_filter = ("day",)
    search_fields = ("group",)


@admin.register(QuotaAlert)
class QuotaAlertAdmin(admin.ModelAdmin):
    list_display = ("group", "level", "bytes_percent", "inodes_percent", "full_on", "mailed_at")
    search_fields = ("group",)
