"""The jobs API: ``/api/jobs/`` (DataTables server side or paginated JSON) and ``/api/jobs/<job_db_inx>/``.

TT's contract (domain 8.2): ``?format=datatables&draw=&start=&length=&order[0][column]=&
order[0][dir]=&columns[i][data]=&search[value]=`` answers ``{draw, recordsTotal, recordsFiltered,
data}``. Every answer is scoped by slurm.visibility.jobs_visible_to; bad parameters get a 400
with the field errors.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace
from typing import Any

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobstats import queries
from jobstats.pagination import DataTablesRenderer, JobListPagination
from jobstats.serializers import JobQuerySerializer, JobRecordSerializer
from jobstats.services import Recent
from userportal.clusters import current_cluster

_ORDER = re.compile(r"^order\[(\d{1,2})\]\[(column|dir|name)\]$")
_COLUMN = re.compile(r"^columns\[(\d{1,3})\]\[(data|name)\]$")
MAX_COLUMNS = 100

DATATABLES_PARAMETERS = [
    OpenApiParameter("search[value]", OpenApiTypes.STR, description="DataTables: the search box's text."),
    OpenApiParameter("order[0][column]", OpenApiTypes.INT, description="DataTables: index of the column to sort by."),
    OpenApiParameter(
        "order[0][dir]", OpenApiTypes.STR, enum=["asc", "desc"], description="DataTables: sort direction."
    ),
    OpenApiParameter(
        "columns[0][data]", OpenApiTypes.STR, description="DataTables: the row key of column 0 (and so on)."
    ),
]


def datatables_params(params: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """DataTables' bracketed parameters folded into the serializer's flat names (``ordering``, ``search``), and their errors."""
    flat: dict[str, Any] = {}
    for key in params:
        if "[" not in key:
            value = params.get(key)
            if value != "":
                flat[key] = value
    if "search[value]" in params:
        flat["search"] = params.get("search[value]")
    columns: dict[int, str] = {}
    orders: dict[int, dict[str, str]] = {}
    errors: dict[str, list[str]] = {}
    for key in params:
        column = _COLUMN.match(key)
        if column and column.group(2) == "data":
            index = int(column.group(1))
            if index < MAX_COLUMNS:
                columns[index] = params.get(key)
        order = _ORDER.match(key)
        if order:
            orders.setdefault(int(order.group(1)), {})[order.group(2)] = params.get(key)
    ordering = []
    for position in sorted(orders)[:3]:
        entry = orders[position]
        direction = entry.get("dir", "asc")
        key = f"order[{position}][dir]"
        if direction not in ("asc", "desc"):
            errors[key] = [_("Use asc or desc.")]
            continue
        name = entry.get("name") or ""
        if not name:
            text = entry.get("column", "")
            if not text.isdigit() or int(text) not in columns:
                errors[f"order[{position}][column]"] = [_("Not the index of a column sent in columns[i][data].")]
                continue
            name = columns[int(text)]
        if name not in queries.ORDERABLE:
            errors[f"order[{position}][column]"] = [_("This column cannot be sorted.")]
            continue
        ordering.append(("-" if direction == "desc" else "") + name)
    if ordering and "ordering" not in flat:
        flat["ordering"] = ",".join(ordering)
    return flat, errors


# A valid request's query by its parameters but ``draw`` (DataTables' request counter, checked alone):
# a page asked again (another draw, another worker's page of the same table) is not validated again.
_QUERIES = Recent(1024)


@functools.cache
def _username_field() -> Any:
    """The serializer's ``username`` field, made once (a serializer copies all its fields when made)."""
    return JobQuerySerializer().fields["username"]


def job_list_query(params: Any) -> queries.JobListQuery:
    """The request's validated query; a ValidationError (400) with the field errors.

    A query seen before with another ``username`` (every user's first page asks the same but
    its name) is not validated again either: only the name is, by the serializer's own field.
    """
    key = tuple(sorted((name, tuple(params.getlist(name))) for name in params if name != "draw"))
    draw = params.get("draw", "")
    valid_draw = draw == "" or (draw.isascii() and draw.isdigit() and len(draw) < 16)  # a count of digits
    query: queries.JobListQuery | None = _QUERIES.get(key)
    if query is not None and valid_draw:
        return query
    named = params.getlist("username")
    # the same key with None for the name: no request's (each parameter has a tuple of values)
    shape = tuple((name, None if name == "username" else values) for name, values in key) if len(named) == 1 else None
    other = _QUERIES.get(shape) if shape is not None else None
    if other is not None and valid_draw:
        try:
            username = _username_field().run_validation(named[0])
        except ValidationError:
            pass  # the whole request's errors, below
        else:
            return _QUERIES.put(key, replace(other, username=username))
    flat, errors = datatables_params(params)
    serializer = JobQuerySerializer(data=flat)
    if not serializer.is_valid() or errors:
        raise ValidationError({**(serializer.errors if serializer.errors else {}), **errors})
    query = _QUERIES.put(key, serializer.to_query())
    if shape is not None:
        _QUERIES.put(shape, replace(query, username=None))
    return query


class JobList(GenericAPIView[Any]):
    """Jobs the caller may see, newest first (DataTables server side or paginated JSON)."""

    renderer_classes = [JSONRenderer, DataTablesRenderer]
    pagination_class = JobListPagination
    serializer_class = JobRecordSerializer

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # An unknown ?format= is a bad parameter (a 400 from the serializer below), not DRF's 404.
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            return (JSONRenderer(), JSONRenderer.media_type)

    @extend_schema(
        operation_id="jobs_list",
        summary="List jobs",
        description=(
            "The caller's jobs (staff: anyone's, with `username`), or an account's jobs (`account`: members see every "
            "user's jobs in it). `format=datatables` answers DataTables' server-side envelope "
            "`{draw, recordsTotal, recordsFiltered, data}`; otherwise a paginated list. Times are ISO-8601 UTC or null."
        ),
        parameters=[JobQuerySerializer, *DATATABLES_PARAMETERS],
        responses={
            200: JobRecordSerializer(many=True),
            400: OpenApiResponse(description="Bad parameters: an object of field errors."),
        },
    )
    def get(self, request: Request) -> Response:
        query = job_list_query(request.query_params)
        unindexed = queries.every_user_order_error(request.user, query)
        if unindexed:
            raise ValidationError(
                {"ordering" if "ordering" in request.query_params else "order[0][column]": [unindexed]}
            )
        jobs = queries.select_jobs(request.user, current_cluster(request), query)
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class JobDetail(APIView):
    """One job record by its key (job_db_inx), under the same scoping as the list."""

    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="jobs_retrieve",
        summary="One job record",
        responses={
            200: JobRecordSerializer,
            404: OpenApiResponse(description="No such job, or not visible to the caller."),
        },
    )
    def get(self, request: Request, job_db_inx: int) -> Response:
        job = queries.get_job(request.user, current_cluster(request), job_db_inx)
        if job is None:
            raise NotFound(_("No such job."))
        return Response(JobRecordSerializer(job).data)
