from django.contrib import admin

from outreach.models import Finding, Preference, SentReport


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ("username", "opted_out", "rules_off", "updated")
    search_fields = ("username",)


class FindingInline(admin.TabularInline):
    model = Finding
    extra = 0
    readonly_fields = ("rule", "job_ids", "jobs", "unused_cost", "currency", "sent", "username")


@admin.register(SentReport)
class SentReportAdmin(admin.ModelAdmin):
    list_display = ("username", "email", "cluster", "sent", "subject")
    search_fields = ("username", "email")
    list_filter = ("cluster",)
    inlines = (FindingInline,)
    readonly_fields = ("username", "email", "cluster", "sent", "window_start", "window_end", "subject", "body")
