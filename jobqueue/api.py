"""The job-queue API, at the seed server's paths under /jobqueue/api/ (submit, status, results,
cancel, jobs, nodes, dashboard). Views authorize and parse, services do the work.

Answers have the seed server's field names and types: `node_id` is a node's number (its place in
JOBQUEUE_NODES, from 0) and `node_name` its configured name (an extra field)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied, Throttled
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobqueue import services
from jobqueue.models import Job
from jobqueue.serializers import JobListSerializer, JobSerializer, NodeSerializer, SubmitSerializer
from jobqueue.steps import results_record
from jobqueue.submission import SubmissionError, parse_submission
from jobqueue.throttles import EndpointIPThrottle, SubmitUserThrottle
from jobqueue.tokens import ConfigTokenAuthentication, JobTokenAuthentication, is_queue_admin
from userportal.audit import audit

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class JobQueueView(APIView):
    """Bearer job tokens or a portal session; the access table (TableAccessPermission) applies."""

    authentication_classes = [JobTokenAuthentication, SessionAuthentication]
    throttle_classes = [EndpointIPThrottle]
    throttle_scope = ""

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        seconds = int(wait or 0) + 1
        raise Throttled(wait, detail=_("Too many requests: try again in %(s)d seconds.") % {"s": seconds})

    def signed_in(self, request: Request) -> User:
        user = request.user
        if not user.is_authenticated:  # the access table (Rule.LOGIN) lets no anonymous request this far
            raise NotAuthenticated()
        return user

    def visible_job(self, request: Request, job_id: str) -> Job:
        jobs = services.jobs_visible_to(self.signed_in(request), admin=is_queue_admin(request))
        job = jobs.filter(job_id=job_id).first()
        if job is None:
            raise NotFound(_("No such job."))
        return job


def error_response(exc: SubmissionError) -> Response:
    errors = exc.errors
    body: dict[str, Any] = {"detail": " ".join(" ".join(v) for v in errors.values()), "errors": errors}
    return Response(body, status=exc.status)


class SubmitView(JobQueueView):
    authentication_classes = [JobTokenAuthentication, ConfigTokenAuthentication, SessionAuthentication]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [EndpointIPThrottle, SubmitUserThrottle]
    throttle_scope = "submit"

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        seconds = int(wait or 0) + 1
        raise Throttled(
            wait,
            detail=_("Too many submissions: at most %(rate)s. Try again in %(s)d seconds.")
            % {"rate": SubmitUserThrottle().get_rate(), "s": seconds},
        )

    @extend_schema(request={"multipart/form-data": SubmitSerializer}, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        try:
            user = self.signed_in(request)
            submission = parse_submission(user, request.data, request.FILES)
            job = services.submit(user, submission, admin=is_queue_admin(request))
        except SubmissionError as exc:
            audit("jobqueue.submit", request=request, status="refused", extra={"errors": exc.errors})
            return error_response(exc)
        audit("jobqueue.submit", request=request, target=f"jobqueue-job:{job.job_id}")
        return Response(
            {
                "job_id": job.job_id,
                "status": job.status,
                "node_id": services.node_ids().get(job.node) if job.node else None,
                "node_name": job.node or None,
                "queue_position": services.queue_position(job),
                "estimated_wait_seconds": services.estimated_wait(job),
                "warnings": job.warnings,
                "message": _("Job submitted."),
            }
        )


class StatusView(JobQueueView):
    throttle_scope = "status"

    @extend_schema(responses={200: JobSerializer})
    def get(self, request: Request, queue_job_id: str) -> Response:
        job = self.visible_job(request, queue_job_id)
        body = services.job_summary(job)
        body.update(
            queue_position=services.queue_position(job),
            estimated_wait_seconds=services.estimated_wait(job),
            error=job.error or None,
            warnings=job.warnings,
        )
        return Response(body)


class ResultsView(JobQueueView):
    throttle_scope = "results"

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, queue_job_id: str) -> Response:
        job = self.visible_job(request, queue_job_id)
        body = results_record(job)
        if job.is_active:
            body.update(output=None, error_output=None, message=_("The job has not finished yet."))
        else:
            body["results_file"] = job.result_file.rsplit("/", 1)[-1] or None
        return Response(body)


class CancelView(JobQueueView):
    throttle_scope = "cancel"

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, queue_job_id: str) -> Response:
        job = self.visible_job(request, queue_job_id)
        try:
            job = services.cancel(job)
        except SubmissionError as exc:
            return error_response(exc)
        audit("jobqueue.cancel", request=request, target=f"jobqueue-job:{job.job_id}")
        return Response({"job_id": job.job_id, "status": job.status, "message": _("Cancellation requested.")})


class JobsView(JobQueueView):
    throttle_scope = "jobs"

    @extend_schema(
        parameters=[
            OpenApiParameter("user", str, description="Admins: only this user's jobs."),
            OpenApiParameter("status", str, description="Only jobs in this status."),
            OpenApiParameter("limit", int, description="At most this many (default 100, at most 1000)."),
        ],
        responses={200: JobListSerializer},
    )
    def get(self, request: Request) -> Response:
        admin = is_queue_admin(request)
        jobs = services.jobs_visible_to(self.signed_in(request), admin=admin)
        # The seed's clients send ?user_id=<themselves>: that is not a filter.
        wanted = request.query_params.get("user") or request.query_params.get("user_id")
        if wanted and wanted != request.user.get_username():
            if not admin:
                raise PermissionDenied(_("Only queue administrators see other users' jobs."))
            jobs = jobs.filter(user__username=wanted)
        if request.query_params.get("status"):
            jobs = jobs.filter(status=request.query_params["status"])
        try:
            limit = min(max(int(request.query_params.get("limit", 100)), 1), 1000)
        except ValueError:
            limit = 100
        ids = services.node_ids()
        rows = [services.job_summary(job, ids) for job in jobs.order_by("-created")[:limit]]
        return Response({"jobs": rows, "count": len(rows)})


class NodesView(JobQueueView):
    authentication_classes: list[type] = []  # public: a bad token must not turn it into a 401
    throttle_scope = "nodes"

    @extend_schema(responses={200: NodeSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(
            [
                {k: node[k] for k in ("node_id", "queue_length", "total_wait_time", "node_name", "is_busy")}
                for node in services.node_statistics()
            ]
        )


class DashboardView(JobQueueView):
    throttle_scope = "dashboard"

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        if not is_queue_admin(request):
            raise PermissionDenied(_("The dashboard is for queue administrators."))
        body = services.dashboard()
        body.update(user_id=request.user.get_username(), is_admin=True)
        return Response(body, status=http.HTTP_200_OK)
