from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from priorities.models import PriorityAdmin, PriorityMember, PriorityMessage, PriorityRequest


class MemberInline(admin.TabularInline):
    model = PriorityMember
    extra = 0


class MessageInline(admin.TabularInline):
    model = PriorityMessage
    extra = 0


@admin.register(PriorityRequest)
class PriorityRequestAdmin(SimpleHistoryAdmin):
    list_display = ("pk", "requester", "account", "gpu_type", "gpu_count", "start", "end", "status", "qos_name")
    list_filter = ("status", "gpu_type", "cluster")
    search_fields = ("account", "qos_name", "ticket", "justification", "requester__username")
    inlines = [MemberInline, MessageInline]


@admin.register(PriorityAdmin)
class PriorityAdminAdmin(SimpleHistoryAdmin):
    list_display = ("username", "email")
