"""The notes read API (staff only, by the access rule of its URLs): ``/api/notes/`` and ``/api/notes/<id>/``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView, RetrieveAPIView

from notes import services
from notes.models import Note
from notes.serializers import NoteDetailSerializer, NoteSerializer

FILTERS = [
    OpenApiParameter("username", OpenApiTypes.STR, description="Notes on this user or one of their jobs."),
    OpenApiParameter("account", OpenApiTypes.STR, description="Notes on this Slurm account."),
    OpenApiParameter("job", OpenApiTypes.STR, description="Notes on this job: 1234, 1234_7 or 1240+1."),
    OpenApiParameter("ticket", OpenApiTypes.STR, description="Notes with this ticket reference."),
    OpenApiParameter("cluster", OpenApiTypes.STR),
    OpenApiParameter("q", OpenApiTypes.STR, description="Text in the title, text, ticket or subjects."),
    OpenApiParameter("deleted", OpenApiTypes.INT, enum=[0, 1], description="1: include deleted notes."),
]


@extend_schema(parameters=FILTERS)
class NoteList(ListAPIView[Note]):
    """Staff notes, newest first, filtered like the notes page."""

    serializer_class = NoteSerializer

    def get_queryset(self) -> QuerySet[Note]:
        params: Any = self.request.query_params
        return services.search(params.dict(), include_deleted=params.get("deleted") == "1")


class NoteDetail(RetrieveAPIView[Note]):
    """One note (deleted ones too) with its history."""

    serializer_class = NoteDetailSerializer
    queryset = Note.objects.all()
    lookup_url_kwarg = "note_id"
