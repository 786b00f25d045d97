"""outreach URLs: a user's choice of reports; the staff's list of what was sent and the dry run."""

from django.urls import path

from outreach import views
from userportal.access import Rule, guard

app_name = "outreach"

urlpatterns = [
    guard(Rule.LOGIN, path("secure/outreach/", views.preferences, name="preferences")),
    guard(Rule.STAFF, path("secure/outreach/staff/", views.staff_index, name="staff")),
    guard(Rule.STAFF, path("secure/outreach/staff/dry-run/", views.staff_dry_run, name="dry-run")),
    guard(Rule.STAFF, path("secure/outreach/staff/<int:report_id>/", views.staff_report, name="report")),
]
