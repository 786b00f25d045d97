from django.contrib import admin

from jobqueue.models import Job, JobToken, Node


@admin.register(JobToken)
class JobTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "is_admin", "created", "expires", "last_used", "revoked"]
    list_filter = ["is_admin", "revoked"]
    search_fields = ["user__username", "prefix"]
    readonly_fields = ["prefix", "created", "last_used"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["job_id", "user", "competition_id", "status", "executor", "node", "created", "finished"]
    list_filter = ["status", "executor", "node"]
    search_fields = ["job_id", "user__username", "competition_id", "project_id"]
    readonly_fields = ["job_id", "created", "started", "finished", "heartbeat", "lease_until", "remote_id"]


admin.site.register(Node)
