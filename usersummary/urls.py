"""usersummary URLs: one user at a glance, for the user themself and staff."""

from django.urls import path

from userportal.access import Rule, guard
from usersummary import views

app_name = "usersummary"

urlpatterns = [
    guard(Rule.LOGIN, path("secure/usersummary/", views.index, name="index")),
    guard(Rule.OWNER, path("secure/usersummary/<str:username>/", views.user, name="user")),
]
