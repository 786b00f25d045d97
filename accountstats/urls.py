"""accountstats URLs (TrailblazingTurtle's paths, domain 8.3), each with its access rule."""

from django.urls import path

from accountstats import views
from userportal.access import Rule, guard

app_name = "accountstats"

urlpatterns = [
    guard(Rule.LOGIN, path("secure/accountstats/", views.index, name="index")),
    # Members of the account (the WHOLE name, checked against live associations) and staff.
    guard(Rule.ACCOUNT_MEMBER, path("secure/accountstats/<str:account>/", views.account, name="account")),
    guard(
        Rule.ACCOUNT_MEMBER,
        path("secure/accountstats/<str:account>/graph/<str:name>.json", views.graph, name="graph"),
    ),
]
