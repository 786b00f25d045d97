"""The root URL conf. Every pattern declares who may see it (userportal.access)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.views.i18n import set_language
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from userportal import views
from userportal.access import Rule, guard, guard_include
from userportal.metrics import metrics_view
from userportal.modules import enabled_modules


def admin_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """Django admin's URLs: its sign-in and sign-out pages are public, the rest is admin's business."""
    patterns, app_name, namespace = admin.site.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and pattern.name in ("login", "logout"):
            guard(Rule.PUBLIC, pattern)
    return patterns, app_name, namespace


urlpatterns = [
    guard(Rule.LOGIN, path("", views.home, name="home")),
    guard(Rule.PUBLIC, path("health/", views.health, name="health")),
    guard(Rule.METRICS, path("metrics", metrics_view, name="metrics")),
    guard(Rule.STAFF, path("staff/tasks/", views.periodic_tasks, name="periodic_tasks")),
    guard(Rule.PUBLIC, path("accounts/login/", views.LoginView.as_view(), name="login")),
    guard(Rule.PUBLIC, path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout")),
    guard(Rule.PUBLIC, path("i18n/setlang/", set_language, name="set_language")),
    guard(Rule.LOGIN, path("cluster/", views.choose_cluster, name="choose_cluster")),
    guard(Rule.LOGIN, path("api/schema/", SpectacularAPIView.as_view(), name="schema")),
    guard(Rule.LOGIN, path("api/schema/ui/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="schema-ui")),
    guard(Rule.LOGIN, path("api/schema/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="schema-redoc")),
    guard_include(Rule.ADMIN, path("admin/", admin_urls())),
    guard(Rule.PUBLIC, path("robots.txt", views.robots_txt, name="robots")),
]

if settings.OIDC_ENABLED:
    urlpatterns.append(guard_include(Rule.PUBLIC, path("oidc/", include("mozilla_django_oidc.urls"))))

# Each enabled feature app mounts its own URL conf (whose patterns carry their own rules).
for _module in enabled_modules():
    urlpatterns.append(path("", include(f"{_module.name}.urls")))

handler400 = "userportal.views.bad_request"
handler403 = "userportal.views.permission_denied"
handler404 = "userportal.views.page_not_found"
handler500 = "userportal.views.server_error"
