"""``/api/jobstats/<job id>/``: one job's efficiency summary, figures and advice, as its page shows them.

The answer is built from jobstats.jobpage.job_page(), the function the job page renders: the same
efficiency measures, unused share, usage figures and advice findings, never computed twice. Its
sentences are in the request's language (Accept-Language, or the portal's default). The
login-node command (jobstats_cli/) prints it in a terminal.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobstats import jobpage, services
from jobstats.domain.efficiency import Efficiency, JobUsage
from jobstats.domain.jobids import JobIdError, parse_array_task, parse_job_ids
from userportal.clusters import current_cluster
from userportal.prometheus import MetricsSession


class MeasureSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["cpu", "memory", "gpu", "time"])
    title = serializers.CharField(help_text="The measure's name in the request's language.")
    percent = serializers.IntegerField(help_text="Used over requested, in percent (capped at 999).")
    fraction = serializers.FloatField()
    used = serializers.CharField()
    requested = serializers.CharField()
    verdict = serializers.ChoiceField(choices=["good", "fair", "poor", "warning"])
    verdict_label = serializers.CharField()
    sentence = serializers.CharField()


class WasteSerializer(serializers.Serializer):
    core_hours = serializers.FloatField()
    gpu_hours = serializers.FloatField()
    memory_gib_hours = serializers.FloatField()
    cost = serializers.FloatField(allow_null=True, help_text="Hardware cost of the unused share, in `currency`.")
    currency = serializers.CharField()


class EfficiencySerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["accounting", "prometheus"])  # type: ignore[assignment]
    source_label = serializers.CharField()
    running = serializers.BooleanField()
    measures = MeasureSerializer(many=True)
    waste = WasteSerializer()
    notes = serializers.ListField(child=serializers.CharField(), help_text="Figures that are unknown, and why.")


class ProgramSerializer(serializers.Serializer):
    name = serializers.CharField()
    cores = serializers.FloatField(help_text="Average cores busy running it.")


class UsageSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["accounting", "prometheus"])  # type: ignore[assignment]
    cpu_seconds = serializers.FloatField(allow_null=True)
    cores_used = serializers.FloatField(allow_null=True)
    mem_max_bytes = serializers.FloatField(allow_null=True)
    gpus_seen = serializers.IntegerField(allow_null=True)
    gpu_util = serializers.FloatField(allow_null=True, help_text="Mean utilisation per GPU, percent.")
    gpu_type = serializers.CharField(allow_null=True)
    threads_running = serializers.FloatField(allow_null=True)
    programs = ProgramSerializer(many=True)


class FindingSerializer(serializers.Serializer):
    rule = serializers.CharField()
    severity = serializers.ChoiceField(choices=["info", "warning", "critical"])
    severity_label = serializers.CharField()
    message = serializers.CharField()
    doc_url = serializers.CharField(help_text="Documentation of the advice, or empty.")
    line = serializers.IntegerField(allow_null=True, help_text="The job script's line the advice is about.")


class ResourcesSerializer(serializers.Serializer):
    cpus = serializers.IntegerField()
    memory_mb = serializers.IntegerField(allow_null=True)
    gpus = serializers.IntegerField()
    nodes = serializers.IntegerField()


class PendingSerializer(serializers.Serializer):
    reason = serializers.CharField()
    sentence = serializers.CharField()
    start_estimate = serializers.DateTimeField(allow_null=True)


class JobEfficiencySerializer(serializers.Serializer):
    id_job = serializers.IntegerField()
    display_id = serializers.CharField(help_text="The id as sacct prints it (`25_2` for an array task).")
    name = serializers.CharField()
    user = serializers.CharField()
    account = serializers.CharField()
    partition = serializers.CharField()
    state = serializers.CharField(help_text="As sacct prints it, e.g. COMPLETED.")
    state_label = serializers.CharField()
    exit_code = serializers.CharField()
    submit = serializers.DateTimeField(allow_null=True)
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    elapsed = serializers.CharField()
    timelimit = serializers.CharField()
    nodelist = serializers.CharField()
    resources = ResourcesSerializer(help_text="Allocated (requested while pending).")
    efficiency = EfficiencySerializer(allow_null=True, help_text="Null before the job ran or without figures.")
    usage = UsageSerializer(allow_null=True)
    metrics_notice = serializers.CharField(help_text="Why the nodes' figures are missing, or empty.")
    advice = FindingSerializer(many=True)
    pending = PendingSerializer(allow_null=True)
    url = serializers.CharField(help_text="The job's page in the portal.")


def _verdict_label(verdict: str) -> str:
    return {"good": _("good"), "fair": _("fair"), "poor": _("poor")}.get(verdict, _("attention"))


def _title(kind: str) -> str:
    return {"cpu": _("CPU"), "memory": _("Memory"), "gpu": _("GPU")}.get(kind, _("Time"))


def _severity_label(label: str) -> str:
    return {"critical": _("Important"), "warning": _("Warning")}.get(label, _("Note"))


def efficiency_data(efficiency: Efficiency | None) -> dict[str, Any] | None:
    if efficiency is None:
        return None
    waste = efficiency.waste
    return {
        "source": efficiency.source,
        "source_label": str(efficiency.source_label),
        "running": efficiency.running,
        "measures": [
            {
                "kind": m.kind,
                "title": _title(m.kind),
                "percent": m.percent,
                "fraction": round(m.fraction, 4),
                "used": str(m.used),
                "requested": str(m.requested),
                "verdict": m.verdict,
                "verdict_label": _verdict_label(m.verdict),
                "sentence": str(m.sentence),
            }
            for m in efficiency.measures
        ],
        "waste": {
            "core_hours": round(waste.core_hours, 2),
            "gpu_hours": round(waste.gpu_hours, 2),
            "memory_gib_hours": round(waste.memory_gib_hours, 1),
            "cost": round(waste.cost, 2) if waste.cost is not None else None,
            "currency": efficiency.currency,
        },
        "notes": [str(note) for note in efficiency.notes],
    }


def usage_data(usage: JobUsage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "source": usage.source,
        "cpu_seconds": usage.cpu_seconds,
        "cores_used": round(usage.cores_used, 3) if usage.cores_used is not None else None,
        "mem_max_bytes": usage.mem_max_bytes,
        "gpus_seen": usage.gpus_seen,
        "gpu_util": usage.gpu_util,
        "gpu_type": usage.gpu_type,
        "threads_running": usage.threads_running,
        "programs": [{"name": name, "cores": round(cores, 2)} for name, cores in usage.programs],
    }


def page_data(request: Request, username: str, page: jobpage.JobPage) -> dict[str, Any]:
    """The API's answer for one job page."""
    row = page.row
    resources = page.allocated or page.requested
    pending = page.pending
    url = reverse("jobstats:job", kwargs={"username": username, "job_id": str(row.id_job)})
    return {
        "id_job": row.id_job,
        "display_id": row.display_id,
        "name": row.name,
        "user": username,
        "account": row.account,
        "partition": row.partition,
        "state": row.state.name,
        "state_label": str(row.state.label),
        "exit_code": page.exit_code,
        "submit": row.submit,
        "start": row.start,
        "end": row.end,
        "elapsed": page.progress.elapsed,
        "timelimit": page.progress.limit,
        "nodelist": page.nodelist,
        "resources": {
            "cpus": resources.cpus,
            "memory_mb": resources.memory_mb,
            "gpus": resources.gpus,
            "nodes": resources.nodes,
        },
        "efficiency": efficiency_data(page.efficiency),
        "usage": usage_data(page.usage),
        "metrics_notice": str(page.metrics_notice),
        "advice": [
            {
                "rule": f.rule,
                "severity": f.severity.label,
                "severity_label": _severity_label(f.severity.label),
                "message": str(f.message),
                "doc_url": f.doc_url,
                "line": f.line,
            }
            for f in page.advice
        ],
        "pending": {
            "reason": pending.reason,
            "sentence": str(pending.sentence),
            "start_estimate": pending.start_estimate,
        }
        if pending is not None
        else None,
        "url": request.build_absolute_uri(url),
    }


class JobEfficiency(APIView):
    """One job of the caller's (staff: anyone's, with `user`): efficiency, figures, advice."""

    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="jobstats_retrieve",
        summary="A job's efficiency, figures and advice",
        description=(
            "What the job's page shows in its Efficiency and Advice sections, for the `jobstats` command of the "
            "login nodes and for scripts: the efficiency measures (CPU, memory, GPU, time) with their verdicts, "
            "the unused share, the usage figures and the advice. `job_id` is a Slurm job id (`1234`) or an array "
            "task (`1234_5`). Sentences are in the request's language (Accept-Language)."
        ),
        parameters=[
            OpenApiParameter("job_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="`1234` or `1234_5`."),
            OpenApiParameter("user", OpenApiTypes.STR, description="Staff only: whose job (default: the caller)."),
        ],
        responses={
            200: JobEfficiencySerializer,
            400: OpenApiResponse(description="Not one job id: an object of field errors."),
            404: OpenApiResponse(description="No such job of this user."),
            503: OpenApiResponse(description="The Slurm accounting database is not answering."),
        },
    )
    def get(self, request: Request, job_id: str) -> Response:
        username = request.user.get_username()
        asked = request.query_params.get("user", "")
        if asked and asked != username:
            if not request.user.is_staff:
                raise ValidationError({"user": [_("Only staff may ask for another user's jobs.")]})
            username = asked
        cluster = current_cluster(request)
        array_task = parse_array_task(job_id)
        if array_task is not None:
            task = services.array_task(username, cluster, *array_task)
            records = services.find_records(username, cluster, task.id_job) if task is not None else []
        else:
            try:
                ids = parse_job_ids(job_id, max_ids=1)
            except JobIdError:
                raise ValidationError({"job_id": [_("Give one job id, such as 1234 or 1234_5.")]}) from None
            records = services.find_records(username, cluster, ids[0])
        if not records:
            raise NotFound(_("No such job for this user."))
        page = jobpage.job_page(username, cluster, records, MetricsSession())
        return Response(page_data(request, username, page))
