"""jobqueue URLs: the seed server's API under /jobqueue/api/, and the pages."""

from django.urls import path

from jobqueue import api, views
from userportal.access import Rule, guard

app_name = "jobqueue"

urlpatterns = [
    guard(Rule.LOGIN, path("jobqueue/", views.index, name="index")),
    guard(Rule.STAFF, path("jobqueue/dashboard/", views.dashboard, name="dashboard")),
    # Tokens may come inside the submitted config: the view authenticates, the rule then applies.
    guard(Rule.LOGIN, path("jobqueue/api/submit", api.SubmitView.as_view(), name="api-submit")),
    # Signed-in users; the job is looked up among the caller's own (services.jobs_visible_to).
    guard(Rule.LOGIN, path("jobqueue/api/status/<str:queue_job_id>", api.StatusView.as_view(), name="api-status")),
    guard(Rule.LOGIN, path("jobqueue/api/results/<str:queue_job_id>", api.ResultsView.as_view(), name="api-results")),
    guard(Rule.LOGIN, path("jobqueue/api/cancel/<str:queue_job_id>", api.CancelView.as_view(), name="api-cancel")),
    guard(Rule.LOGIN, path("jobqueue/api/jobs", api.JobsView.as_view(), name="api-jobs")),
    guard(Rule.PUBLIC, path("jobqueue/api/nodes", api.NodesView.as_view(), name="api-nodes")),
    guard(Rule.STAFF, path("jobqueue/api/dashboard", api.DashboardView.as_view(), name="api-dashboard")),
]
