"""jobstats URLs: TrailblazingTurtle's paths (domain 8.1, 8.2), each with its access rule."""

from django.urls import path, register_converter

from jobstats import api, api_efficiency, command_page, views
from jobstats.urls_jobscripts import urlpatterns as jobscript_patterns
from userportal.access import Rule, guard


class JobIdsConverter:
    """A job id, a list with ranges (``100-105,107``) or an array task (``25_2``).

    The view validates and bounds it (400, not 404); an array task redirects to the task's own job id.
    """

    regex = "[0-9][0-9,_-]*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: object) -> str:
        return str(value)


register_converter(JobIdsConverter, "jobids")

app_name = "jobstats"

urlpatterns = [
    guard(Rule.LOGIN, path("secure/jobstats/", views.index, name="index")),
    # The signed-in user's own personal token, for the jobstats command (not a username in the URL).
    guard(Rule.LOGIN, path("secure/jobstats-command/", command_page.command, name="command")),
    guard(Rule.OWNER, path("secure/jobstats/<str:username>/", views.user, name="user")),
    guard(
        Rule.OWNER, path("secure/jobstats/<str:username>/graph/<str:name>.json", views.user_graph, name="user_graph")
    ),
    guard(Rule.OWNER, path("secure/jobstats/<str:username>/<jobids:job_id>/", views.job, name="job")),
    guard(
        Rule.OWNER,
        path("secure/jobstats/<str:username>/<jobids:job_id>/graph/<str:name>.json", views.job_graph, name="job_graph"),
    ),
    guard(
        Rule.OWNER,
        path("secure/jobstats/<str:username>/<jobids:job_id>/value/cost.json", views.job_cost, name="job_cost"),
    ),
    # Any signed-in user; the answers are scoped by slurm.visibility.jobs_visible_to.
    guard(Rule.LOGIN, path("api/jobs/", api.JobList.as_view(), name="api-jobs")),
    guard(Rule.LOGIN, path("api/jobs/<int:job_db_inx>/", api.JobDetail.as_view(), name="api-job")),
    # The caller's own jobs (staff: anyone's); the jobstats command of the login nodes reads it.
    guard(
        Rule.LOGIN, path("api/jobstats/<jobids:job_id>/", api_efficiency.JobEfficiency.as_view(), name="api-jobstats")
    ),
    *jobscript_patterns,
]
