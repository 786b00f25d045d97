"""The notes API's rows."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notes.models import Note


class NoteVersionSerializer(serializers.Serializer):
    date = serializers.DateTimeField(source="history_date")
    change = serializers.CharField(source="history_type", help_text="+ created, ~ changed, - removed")
    by = serializers.CharField(source="history_user.username", default="")
    title = serializers.CharField()
    deleted = serializers.BooleanField()


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author_name")
    job = serializers.CharField(source="job_ref")

    class Meta:
        model = Note
        fields = [
            "id", "cluster", "username", "account", "job", "job_id", "job_user", "title", "text", "ticket",
            "author", "created", "updated", "deleted", "deleted_at", "deleted_by",
        ]  # fmt: skip


class NoteDetailSerializer(NoteSerializer):
    history = serializers.SerializerMethodField()

    class Meta(NoteSerializer.Meta):
        fields = [*NoteSerializer.Meta.fields, "history"]

    @extend_schema_field(NoteVersionSerializer(many=True))
    def get_history(self, note: Note) -> list[dict[str, object]]:
        versions = note.history.select_related("history_user").order_by("-history_date", "-history_id")[:50]
        return list(NoteVersionSerializer(versions, many=True).data)
