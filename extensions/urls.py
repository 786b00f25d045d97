"""extensions URLs, each with its access rule (a job's form: its owner and staff; the panel: staff)."""

from django.urls import path

from extensions import views
from userportal.access import Rule, guard

app_name = "extensions"

urlpatterns = [
    guard(Rule.LOGIN, path("secure/extensions/", views.index, name="index")),
    guard(Rule.OWNER, path("secure/extensions/job/<str:username>/<str:job_id>/", views.new, name="new")),
    guard(Rule.STAFF, path("secure/extensions/staff/", views.staff_list, name="staff")),
    guard(Rule.STAFF, path("secure/extensions/staff/<int:extension_id>/", views.staff_detail, name="staff-detail")),
]
