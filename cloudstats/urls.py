"""cloudstats URLs (TrailblazingTurtle's paths under /secure/cloudstats/), each with its access rule.

A project's pages are for its members (CLOUDSTATS_MEMBERSHIP) and staff; an instance's pages also
check that the instance is in the project of the URL (views: a 404 otherwise).
"""

from django.urls import path

from cloudstats import views
from userportal.access import Rule, guard

app_name = "cloudstats"

PROJECT = "secure/cloudstats/project/<str:project>/"
INSTANCE = PROJECT + "<uuid:uuid>/"

urlpatterns = [
    guard(Rule.LOGIN, path("secure/cloudstats/", views.index, name="index")),
    guard(Rule.STAFF, path("secure/cloudstats/graph/<str:metric>.json", views.staff_graph, name="staff_graph")),
    guard(Rule.STAFF, path("secure/cloudstats/usage/", views.staff_usage, name="staff_usage")),
    guard(Rule.STAFF, path("secure/cloudstats/idle/", views.idle, name="idle")),
    guard(Rule.PROJECT_MEMBER, path(PROJECT, views.project, name="project")),
    guard(Rule.PROJECT_MEMBER, path(PROJECT + "graph/<str:metric>.json", views.project_graph, name="project_graph")),
    guard(Rule.PROJECT_MEMBER, path(PROJECT + "usage/", views.project_usage, name="project_usage")),
    guard(Rule.PROJECT_MEMBER, path(INSTANCE, views.instance, name="instance")),
    guard(Rule.PROJECT_MEMBER, path(INSTANCE + "graph/<str:metric>.json", views.instance_graph, name="instance_graph")),
]
