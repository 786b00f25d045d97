"""/api/jobscripts/: the job-script uploader's endpoint (TrailblazingTurtle's protocol, domain 6.1).

POST is for the uploader's service account (Rule.SERVICE: service accounts and staff), with
``Authorization: Token <key>``. Reading and deleting scripts needs staff *and* the Django
permission (jobstats.view_jobscript / delete_jobscript): scripts hold users' paths and sometimes
their secrets, so being staff is not enough, and a service account's token can only upload.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from jobstats import jobscripts
from jobstats.models import JobScript
from slurm.models import default_cluster
from userportal.permissions import TableAccessPermission

MAX_JOB_ID = 2**32 - 1  # id_job is an unsigned 32-bit integer in Slurm
MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z: the last second a datetime can hold


class ScriptField(serializers.CharField):
    """A job script kept exactly as sent (no whitespace trimming), minus NULs, within the size limit."""

    default_error_messages = {
        "too_large": _("Ensure this script has no more than %(limit)d bytes (it has %(size)d)."),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = jobscripts.clean_script(super().to_internal_value(data))
        if not value:
            self.fail("blank")
        size, limit = jobscripts.script_bytes(value), settings.JOBSCRIPT_MAX_BYTES
        if size > limit:
            raise ValidationError(self.error_messages["too_large"] % {"limit": limit, "size": size})
        return value


def upload_cluster(value: str, bound: str) -> str:
    """The cluster an upload naming `value` ("" if none) is for, with a token bound to `bound` ("" if not)."""
    if not value:
        return bound or default_cluster()
    if value not in settings.SLURM_CLUSTERS:
        raise ValidationError(_("Unknown cluster %(name)s.") % {"name": value})
    if bound and value != bound:
        raise ValidationError(_("This token uploads job scripts for cluster %(name)s only.") % {"name": bound})
    return value


def body_too_large(request: Any) -> bool:
    """A body that cannot hold a script within the limit: refused before it is read. JSON escapes
    can make a script up to 6 times longer than its UTF-8 bytes."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    return bool(length.isdigit() and int(length) > 6 * settings.JOBSCRIPT_MAX_BYTES + 65536)


class JobScriptUploadSerializer(serializers.Serializer):
    """What the uploader sends; the answer echoes it with what the portal worked out."""

    id_job = serializers.IntegerField(min_value=1, max_value=MAX_JOB_ID, help_text="The Slurm job id.")
    submit_script = ScriptField(help_text="The batch script. NUL characters are removed.")
    cluster = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Slurm ClusterName; the portal's first cluster when omitted.",
    )
    time_submit = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_TIME,
        help_text="The job's submit time (epoch seconds; the uploader's reading, snapped to the job table's "
        "value within 2 minutes). When omitted the portal looks it up in the job table.",
    )
    received_at = serializers.DateTimeField(read_only=True)

    def _bound_cluster(self) -> str:
        """The cluster the request's API token is bound to ("" for session logins and unbound tokens)."""
        request = self.context.get("request")
        return getattr(getattr(request, "auth", None), "cluster", "") or ""

    def validate_cluster(self, value: str) -> str:
        return upload_cluster(value, self._bound_cluster())

    def create(self, validated_data: dict[str, Any]) -> JobScript:
        request = self.context.get("request")
        try:
            return jobscripts.store_script(
                cluster=validated_data.get("cluster") or self._bound_cluster() or default_cluster(),
                id_job=validated_data["id_job"],
                submit_script=validated_data["submit_script"],
                time_submit=validated_data.get("time_submit"),
                uploaded_by=getattr(request, "user", None),
            )
        except jobscripts.DuplicateScript:
            # The uploader greps the body for this text, under "id_job" as DRF's UniqueValidator put it.
            raise ValidationError({"id_job": [jobscripts.DUPLICATE_MESSAGE]}) from None


class JobScriptSerializer(serializers.ModelSerializer):
    uploaded_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Username of the uploading account."
    )

    class Meta:
        model = JobScript
        fields = ["id", "cluster", "id_job", "time_submit", "received_at", "uploaded_by", "submit_script"]
        read_only_fields = fields


class JobScriptAccess(BasePermission):
    """Uploads: service accounts, or staff with the upload permission; reads and deletes: the model permission."""

    message = _("Reading job scripts needs staff status and the permission to view job scripts.")

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method == "OPTIONS":
            return True  # TableAccessPermission (Rule.SERVICE) decided
        if request.method == "POST":
            return jobscripts.may_upload(request.user)
        if request.method == "DELETE":
            return jobscripts.can_delete_jobscripts(request.user)
        return jobscripts.can_read_jobscripts(request.user)


CLUSTER_PARAMETER = OpenApiParameter("cluster", OpenApiTypes.STR, description="Only this cluster's scripts.")
DUPLICATE_EXAMPLE = OpenApiExample(
    "Already stored",
    value={"id_job": [jobscripts.DUPLICATE_MESSAGE]},
    response_only=True,
    status_codes=["400"],
)


def _filter(queryset: QuerySet[JobScript], params: Any, *names: str) -> QuerySet[JobScript]:
    for name in names:
        value = params.get(name)
        if value in (None, ""):
            continue
        if name != "cluster":
            try:
                value = int(value)
            except ValueError:
                raise ValidationError({name: [_("A whole number is required.")]}) from None
            if not 0 <= value <= {"id_job": MAX_JOB_ID, "time_submit": MAX_TIME}.get(name, MAX_TIME):
                raise ValidationError({name: [_("Out of range.")]})
        queryset = queryset.filter(**{name: value})
    return queryset


@extend_schema_view(
    get=extend_schema(
        summary="List uploaded job scripts, newest first",
        description="Staff with the permission jobstats.view_jobscript only.",
        parameters=[CLUSTER_PARAMETER, OpenApiParameter("id_job", OpenApiTypes.INT, description="Only this job id.")],
    ),
    post=extend_schema(
        summary="Upload a job script (the Slurm prolog uploader)",
        description=(
            "Send `Authorization: Token <key>` of a service account. A script already stored for this job "
            "answers 400 with `job script with this id job already exists.` under `id_job`; uploaders treat "
            "that as success. NUL characters are removed; scripts over PORTAL_JOBSCRIPT_MAX_BYTES get a 400."
        ),
        request=JobScriptUploadSerializer,
        responses={
            201: JobScriptUploadSerializer,
            400: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="Invalid data (errors by field), or the script is already stored.",
                examples=[DUPLICATE_EXAMPLE],
            ),
            401: OpenApiResponse(description="Missing, unknown, revoked or expired token."),
            403: OpenApiResponse(description="The token's user is neither a service account nor staff."),
        },
    ),
)
class JobScriptList(generics.ListCreateAPIView):
    permission_classes = [TableAccessPermission, JobScriptAccess]
    parser_classes = [JSONParser]
    queryset = JobScript.objects.none()  # for the schema generator; get_queryset() decides

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return JobScriptUploadSerializer if self.request.method == "POST" else JobScriptSerializer

    def get_queryset(self) -> QuerySet[JobScript]:
        queryset = jobscripts.jobscripts_visible_to(self.request.user).order_by("-received_at", "-id")
        return _filter(queryset, self.request.query_params, "cluster", "id_job")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if body_too_large(request):  # DRF parses the whole body into memory: refused before
            limit, size = settings.JOBSCRIPT_MAX_BYTES, int(request.META["CONTENT_LENGTH"])
            message = ScriptField.default_error_messages["too_large"] % {"limit": limit, "size": size}
            raise ValidationError({"submit_script": [message]})
        return super().create(request, *args, **kwargs)


@extend_schema_view(
    get=extend_schema(
        summary="The most recent uploaded script of a job id",
        description="Staff with the permission jobstats.view_jobscript only. Job ids are reused: "
        "narrow with `cluster` and `time_submit`.",
        parameters=[
            CLUSTER_PARAMETER,
            OpenApiParameter("time_submit", OpenApiTypes.INT, description="The submission (epoch seconds)."),
        ],
    ),
    delete=extend_schema(
        summary="Delete the script that GET shows",
        description="Staff with the permission jobstats.delete_jobscript only.",
        parameters=[
            CLUSTER_PARAMETER,
            OpenApiParameter("time_submit", OpenApiTypes.INT, description="The submission (epoch seconds)."),
        ],
    ),
)
class JobScriptDetail(generics.RetrieveDestroyAPIView):
    permission_classes = [TableAccessPermission, JobScriptAccess]
    serializer_class = JobScriptSerializer
    queryset = JobScript.objects.none()
    lookup_field = "id_job"

    def get_queryset(self) -> QuerySet[JobScript]:
        queryset = jobscripts.jobscripts_visible_to(self.request.user)
        return _filter(queryset, self.request.query_params, "cluster", "time_submit")

    def get_object(self) -> JobScript:
        found = self.get_queryset().filter(id_job=self.kwargs["id_job"]).order_by("-received_at", "-id").first()
        if found is None:
            raise Http404
        self.check_object_permissions(self.request, found)
        return found
