"""quotas URLs (TrailblazingTurtle's paths, domain 8.3), each with its access rule."""

from django.urls import path

from quotas import views
from userportal.access import Rule, guard

app_name = "quotas"

urlpatterns = [
    guard(Rule.LOGIN, path("secure/quotas/", views.index, name="index")),
    guard(Rule.OWNER, path("secure/quotas/<str:username>/", views.user, name="user")),
]
