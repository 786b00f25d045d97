"""nodes URLs (staff only): the node list, one node's page and its graphs (figure JSON)."""

from django.urls import path

from nodes import views
from userportal.access import Rule, guard

app_name = "nodes"

urlpatterns = [
    guard(Rule.STAFF, path("secure/nodes/", views.index, name="index")),
    guard(Rule.STAFF, path("secure/nodes/<str:node>/", views.node, name="node")),
    guard(Rule.STAFF, path("secure/nodes/<str:node>/graph/<str:graph>/", views.graph, name="graph")),
]
