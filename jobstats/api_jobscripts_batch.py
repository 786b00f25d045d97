"""POST /api/jobscripts/batch/: many job scripts in one request (our uploader's burst path).

The same access as a single upload (a service account's token, or staff with the upload power)
and the same checks per script as POST /api/jobscripts/ (its serializer gives the field errors).
Valid scripts are stored even when others are rejected; the answer lists the rejected ones by
their index in the batch, so the uploader drops those and removes the rest from its spool.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobstats import jobscripts
from jobstats.api_jobscripts import MAX_JOB_ID, MAX_TIME, JobScriptAccess, JobScriptUploadSerializer
from jobstats.jobscripts_batch import store_scripts
from slurm.models import default_cluster
from userportal.permissions import TableAccessPermission

MAX_SCRIPTS = 1000  # scripts in one batch
MAX_BODY_BYTES = 16 * 1024 * 1024  # the request body, refused before it is parsed


def _plain_int(value: Any, lowest: int, highest: int) -> bool:
    return type(value) is int and lowest <= value <= highest


class BatchSerializer(serializers.Serializer):
    """The batch itself; each script is checked on its own (:func:`_checked`)."""

    scripts = serializers.ListField(
        child=serializers.JSONField(),  # each script is checked on its own: a bad one is rejected alone
        min_length=1,
        max_length=MAX_SCRIPTS,
        help_text="Uploads as POST /api/jobscripts/ takes them: id_job, submit_script, cluster, time_submit.",
    )


def _checked(item: Any, request: Request, bound: str, limit: int) -> tuple[dict[str, Any] | None, Any]:
    """(the upload as store_scripts takes it, None) or (None, its field errors).

    The common case (plain JSON types within range) is checked here without a serializer, with
    the serializer's rules; anything else goes through JobScriptUploadSerializer for its errors.
    """
    if isinstance(item, dict) and set(item) <= {"id_job", "submit_script", "cluster", "time_submit"}:
        script, cluster, when = item.get("submit_script"), item.get("cluster") or "", item.get("time_submit")
        if (
            _plain_int(item.get("id_job"), 1, MAX_JOB_ID)
            and isinstance(script, str)
            and isinstance(cluster, str)
            and (when is None or _plain_int(when, 1, MAX_TIME))
            and (not cluster or (cluster in settings.SLURM_CLUSTERS and (not bound or cluster == bound)))
        ):
            cleaned = jobscripts.clean_script(script)
            if cleaned and jobscripts.script_bytes(cleaned) <= limit:
                upload = {"id_job": item["id_job"], "submit_script": cleaned, "time_submit": when}
                upload["cluster"] = cluster or bound or default_cluster()
                return upload, None
    serializer = JobScriptUploadSerializer(data=item, context={"request": request})
    if not serializer.is_valid():
        return None, serializer.errors
    data = dict(serializer.validated_data)
    data["cluster"] = data.get("cluster") or bound or default_cluster()
    data.setdefault("time_submit", None)
    return data, None


@extend_schema(
    summary="Upload many job scripts in one request (the uploader's burst path)",
    description=(
        f"At most {MAX_SCRIPTS} scripts, each as POST /api/jobscripts/ takes it. Idempotent on "
        "(cluster, id_job, time_submit): a script already stored counts as a duplicate. Valid scripts "
        "are stored even when others are rejected; `rejected` lists the others by index with their errors."
    ),
    request=BatchSerializer,
    responses={
        200: OpenApiResponse(
            response=OpenApiTypes.OBJECT, description="{stored, duplicates, rejected: [{index, id_job, errors}]}"
        ),
        400: OpenApiResponse(description="Not a batch: `scripts` missing, empty, too long, or the body too large."),
        401: OpenApiResponse(description="Missing, unknown, revoked or expired token."),
        403: OpenApiResponse(description="The token's user is neither a service account nor staff."),
    },
)
class JobScriptBatch(APIView):
    permission_classes = [TableAccessPermission, JobScriptAccess]
    parser_classes = [JSONParser]

    def post(self, request: Request) -> Response:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            message = _("A batch may hold at most %(limit)d bytes.") % {"limit": MAX_BODY_BYTES}
            raise ValidationError({"scripts": [message]})
        batch = BatchSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        bound = getattr(request.auth, "cluster", "") or ""
        limit = settings.JOBSCRIPT_MAX_BYTES
        uploads: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(batch.validated_data["scripts"]):
            upload, errors = _checked(item, request, bound, limit)
            if upload is None:
                id_job = item.get("id_job") if isinstance(item, dict) else None
                rejected.append({"index": index, "id_job": id_job, "errors": errors})
            else:
                uploads.append(upload)
        stored, duplicates = store_scripts(uploads, uploaded_by=request.user) if uploads else (0, 0)
        return Response({"stored": stored, "duplicates": duplicates, "rejected": rejected})
