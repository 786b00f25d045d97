"""The jobs API's pagination: DRF's limit/offset, and DataTables' server-side envelope (``?format=datatables``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param
from rest_framework.views import APIView

MAX_PAGE = 1000


class DataTablesRenderer(JSONRenderer):
    """JSON, selected by ``?format=datatables`` (DRF's format override needs a renderer of that name)."""

    format = "datatables"


class JobListPagination(LimitOffsetPagination):
    """``limit``/``offset`` (100 by default, at most 1000) answer ``{count, next, previous, results}``.

    With ``?format=datatables`` the page is DataTables' ``start``/``length`` and the answer its
    envelope ``{draw, recordsTotal, recordsFiltered, data}`` (TT's contract, read by jobs_table.js).
    The list is a jobstats.queries.JobSelection: its length is the filtered count and its ``total``
    the count before filters, both cached under their SQL, so neither is counted here.
    """

    default_limit = 100
    max_limit = MAX_PAGE
    datatables = False
    draw = 0
    total = 0

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        self.datatables = getattr(request.accepted_renderer, "format", "") == DataTablesRenderer.format
        if self.datatables:
            self.limit_query_param, self.offset_query_param = "length", "start"
            self.draw = _draw(request)
        page = super().paginate_queryset(queryset, request, view)
        if page == [] and self.limit:
            # DRF reads nothing when the (cached) count is 0 or below the offset: read the page, which
            # corrects a count that a job submitted since left behind
            offset = self.offset or 0
            page = list(queryset[offset : offset + self.limit])
        self.count = len(queryset)  # reading the page may have corrected a stale cached count
        self.total = int(getattr(queryset, "total", self.count or 0))
        return page

    def get_count(self, queryset: QuerySet[Any] | Sequence[Any]) -> int:
        return len(queryset)  # a JobSelection's length is its cached count; len() of a queryset would fetch it

    def get_next_link(self) -> str | None:
        return self._as_asked(super().get_next_link())

    def get_previous_link(self) -> str | None:
        return self._as_asked(super().get_previous_link())

    def _as_asked(self, url: str | None) -> str | None:
        """DRF's link without the ``limit`` it adds when the request had none (the links clients got before)."""
        if url is None or self.request is None or self.limit_query_param in self.request.query_params:
            return url
        return remove_query_param(url, self.limit_query_param)

    def get_paginated_response(self, data: Any) -> Response:
        if self.datatables:
            return Response(
                {"draw": self.draw, "recordsTotal": self.total, "recordsFiltered": self.count, "data": data}
            )
        return super().get_paginated_response(data)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        datatables = {
            "type": "object",
            "required": ["draw", "recordsTotal", "recordsFiltered", "data"],
            "properties": {
                "draw": {"type": "integer"},  # the request's, echoed
                "recordsTotal": {"type": "integer"},  # visible before the filters
                "recordsFiltered": {"type": "integer"},
                "data": schema,
            },
        }
        return {"oneOf": [super().get_paginated_response_schema(schema), datatables]}

    def get_schema_operation_parameters(self, view: APIView) -> list[Any]:
        return []  # limit, offset, start and length are documented (with their bounds) by JobQuerySerializer


def _draw(request: Request) -> int:
    """DataTables' request counter, read as the query serializer validated it (absent or empty: 0)."""
    value = request.query_params.get("draw", "")
    return int(serializers.IntegerField(min_value=0).to_internal_value(value)) if value != "" else 0
