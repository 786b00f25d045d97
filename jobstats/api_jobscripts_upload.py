"""POST /api/jobscripts/ with an API token, without DRF's request machinery: the uploader's hot path.

An upload is the portal's most frequent request (array jobs start thousands of tasks at once,
TrailblazingTurtle's uploader sends one request each), and DRF's dispatch around it (the Request
wrapper, content negotiation, the serializer's field copies) cost more than storing the script.
This view takes the uploads it can answer exactly as JobScriptList would, through the same
functions: the token (userportal.tokens.ApiTokenAuthentication), the access rule of the route
(userportal.access.allowed), the upload permission (jobscripts.may_upload), the body limit, the
cluster (upload_cluster), the script's cleaning and size, store_script and its duplicate answer.

It runs as the route's token POST (userportal.token_posts, registered by JobstatsConfig), right
after the request log and the metrics, with the headers of the middleware it skips added by their
own code. Everything else goes to JobScriptList, the route's view, whose answer is
the one it always gave: no token or a session, a refused token or user (401, 403), a body that is
not a plain valid upload (400 with the field errors, 415), an HTML client (the browsable API), and
every other method.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer

from jobstats import jobscripts
from jobstats.api_jobscripts import MAX_JOB_ID, MAX_TIME, body_too_large, upload_cluster
from userportal.access import allowed, rule_for
from userportal.tokens import ApiTokenAuthentication

# What DRF adds to JobScriptList's answers (APIView.finalize_response).
ALLOW = "GET, POST, HEAD, OPTIONS"
_received_at = serializers.DateTimeField()  # the answer's received_at, as the serializer writes it
_renderer = JSONRenderer()


def upload(request: HttpRequest) -> HttpResponse | None:
    """The answer to a token's well-formed upload (201, or 400 for a duplicate); None for JobScriptList."""
    try:
        found = ApiTokenAuthentication().authenticate(request)
    except APIException:
        return None
    if found is None:
        return None
    user, token = found
    request.user = user  # for the rules, and the request log line names the uploader
    rule = rule_for(request)
    if rule is None or not allowed(rule, request, {}) or not jobscripts.may_upload(user):
        return None
    if not _plain_json(request) or body_too_large(request):
        return None
    fields = _upload_fields(request.body, getattr(token, "cluster", "") or "")
    if fields is None:
        return None
    try:
        row = jobscripts.store_script(**fields, uploaded_by=user)
    except jobscripts.DuplicateScript:
        # The uploader greps the body for this text, under "id_job" as DRF's UniqueValidator put it.
        return _answer({"id_job": [jobscripts.DUPLICATE_MESSAGE]}, 400)
    body = {
        "id_job": row.id_job,
        "submit_script": row.submit_script,
        "cluster": row.cluster,
        "time_submit": row.time_submit,
        "received_at": _received_at.to_representation(row.received_at),
    }
    return _answer(body, 201)


def _plain_json(request: HttpRequest) -> bool:
    """A UTF-8 JSON body, and an answer in JSON (DRF would render the browsable API for HTML)."""
    if request.content_type != "application/json":
        return False
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    return charset in ("utf-8", "utf8") and "html" not in request.META.get("HTTP_ACCEPT", "")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # as DRF's strict JSONParser


def _upload_fields(body: bytes, bound: str) -> dict[str, Any] | None:
    """store_script's arguments when `body` is an upload JobScriptUploadSerializer takes as it is
    (the same values); None for anything else, which the serializer answers."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    id_job, script = data.get("id_job"), data.get("submit_script")
    cluster, time_submit = data.get("cluster", ""), data.get("time_submit")
    if type(id_job) is not int or not 1 <= id_job <= MAX_JOB_ID or type(script) is not str:
        return None
    if type(cluster) is not str or len(cluster) > 64:
        return None
    if time_submit is not None and (type(time_submit) is not int or not 1 <= time_submit <= MAX_TIME):
        return None
    script = jobscripts.clean_script(script)
    if not script or jobscripts.script_bytes(script) > settings.JOBSCRIPT_MAX_BYTES:
        return None
    try:
        cluster = upload_cluster(cluster, bound)
    except serializers.ValidationError:
        return None
    return {"cluster": cluster, "id_job": id_job, "submit_script": script, "time_submit": time_submit}


def _answer(data: dict[str, Any], status: int) -> HttpResponse:
    response = HttpResponse(_renderer.render(data), status=status, content_type="application/json")
    response["Allow"] = ALLOW
    response["Vary"] = "Accept"
    return response
