"""priorities URLs, each with its access rule (users' pages: signed in; the rest: staff)."""

from django.urls import path

from priorities import views
from userportal.access import Rule, guard

app_name = "priorities"

urlpatterns = [
    # Signed-in users; every list is scoped to the user's own requests by services.requests_of.
    guard(Rule.LOGIN, path("secure/priorities/", views.index, name="index")),
    guard(Rule.LOGIN, path("secure/priorities/new/", views.new, name="new")),
    guard(Rule.LOGIN, path("secure/priorities/policy/", views.policy, name="policy")),
    guard(Rule.STAFF, path("secure/priorities/staff/", views.staff_list, name="staff")),
    guard(Rule.STAFF, path("secure/priorities/staff/timeline/", views.timeline, name="timeline")),
    guard(Rule.STAFF, path("secure/priorities/staff/<int:priority_id>/", views.staff_detail, name="staff-detail")),
]
