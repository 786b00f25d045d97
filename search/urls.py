"""search URLs: staff only."""

from django.urls import path

from search import views
from userportal.access import Rule, guard

app_name = "search"

urlpatterns = [
    guard(Rule.STAFF, path("secure/search/", views.index, name="index")),
    guard(Rule.STAFF, path("secure/search/results.json", views.results, name="results")),
]
