"""Request shapes of the job-queue API, for validation messages and the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers


class SubmitSerializer(serializers.Serializer):
    """multipart/form-data: the code file and the seed server's config JSON (a file or a field)."""

    code = serializers.FileField(help_text="The Python file to run (.py, UTF-8).")
    config_file = serializers.FileField(
        required=False,
        help_text='JSON: {"competition_id", "project_id", "user_id", "expected_time", "token"?}.',
    )
    config = serializers.CharField(required=False, help_text="The same JSON as a form field.")


class JobSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    user_id = serializers.CharField()
    competition_id = serializers.CharField()
    project_id = serializers.CharField()
    status = serializers.CharField()
    node_id = serializers.IntegerField(allow_null=True, help_text="The node's number (JOBQUEUE_NODES order, from 0).")
    node_name = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    expected_time = serializers.IntegerField()
    exit_code = serializers.IntegerField(allow_null=True)


class JobListSerializer(serializers.Serializer):
    jobs = JobSerializer(many=True)
    count = serializers.IntegerField()


class NodeSerializer(serializers.Serializer):
    node_id = serializers.IntegerField(help_text="The node's number (JOBQUEUE_NODES order, from 0).")
    queue_length = serializers.IntegerField()
    total_wait_time = serializers.IntegerField()
    node_name = serializers.CharField()
    is_busy = serializers.BooleanField()
