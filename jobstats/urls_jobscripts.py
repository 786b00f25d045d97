"""URL patterns of the job-script API (/api/jobscripts/), included by jobstats/urls.py.

Rule.SERVICE lets service accounts and staff through; the views also require the Django
permission to view or delete job scripts for anything but an upload (jobstats.api_jobscripts).
A token's upload is answered after the request log and the metrics by jobstats.api_jobscripts_upload
(the uploader's hot path, registered with userportal.token_posts in JobstatsConfig.ready()).
"""

from django.urls import URLPattern, path

from jobstats import api_jobscripts as api
from jobstats import api_jobscripts_batch as batch
from userportal.access import Rule, guard

urlpatterns: list[URLPattern] = [
    guard(Rule.SERVICE, path("api/jobscripts/", api.JobScriptList.as_view(), name="jobscript-list")),
    guard(Rule.SERVICE, path("api/jobscripts/batch/", batch.JobScriptBatch.as_view(), name="jobscript-batch")),
    guard(Rule.SERVICE, path("api/jobscripts/<int:id_job>/", api.JobScriptDetail.as_view(), name="jobscript-detail")),
]
