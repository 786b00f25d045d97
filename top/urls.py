"""top URLs (TrailblazingTurtle's paths, domain 8.3): staff only."""

from django.urls import path

from top import views
from userportal.access import Rule, guard

app_name = "top"

urlpatterns = [
    guard(Rule.STAFF, path("secure/top/", views.index, name="index")),
    guard(Rule.STAFF, path("secure/top/compute/", views.compute, name="compute")),
    guard(Rule.STAFF, path("secure/top/gpucompute/", views.gpucompute, name="gpucompute")),
    guard(Rule.STAFF, path("secure/top/largemem/", views.largemem, name="largemem")),
    guard(Rule.STAFF, path("secure/top/idlegpu/", views.idlegpu, name="idlegpu")),
    guard(Rule.STAFF, path("secure/top/lustre/", views.filesystem, name="filesystem")),
]
