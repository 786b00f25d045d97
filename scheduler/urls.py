"""scheduler URLs (staff only): the analytics page, its graphs (figure JSON) and its CSV."""

from django.urls import path

from scheduler import views
from userportal.access import Rule, guard

app_name = "scheduler"

urlpatterns = [
    guard(Rule.STAFF, path("secure/scheduler/", views.index, name="index")),
    guard(Rule.STAFF, path("secure/scheduler/graph/<str:chart>/", views.graph, name="graph")),
    guard(Rule.STAFF, path("secure/scheduler/scheduler.csv", views.csv_export, name="csv")),
]
