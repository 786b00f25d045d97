"""pages URLs: the public cluster status, for anyone (no login)."""

from django.urls import path

from pages import views
from userportal.access import Rule, guard

app_name = "pages"

urlpatterns = [
    guard(Rule.PUBLIC, path("pages/", views.index, name="index")),
    guard(Rule.PUBLIC, path("pages/graph/<str:figure>.json", views.graph, name="graph")),
]
