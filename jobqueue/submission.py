"""A submission's code and config: parsed and checked before the job is queued (400s and 403s, per field).

The seed server's clients send a multipart `code` file and a `config_file` JSON (or `config`),
with the token inside it when they send no Authorization header (jobqueue.tokens reads it here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile
    from rest_framework.request import Request

NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")  # \Z: "$" also matched before a final newline


class SubmissionError(Exception):
    """A refused submission: `status` is the HTTP answer (400, 403, 409), `errors` the reasons."""

    def __init__(self, status: int, errors: dict[str, list[str]] | str) -> None:
        super().__init__(str(errors))
        self.status = status
        self.errors = errors if isinstance(errors, dict) else {"detail": [errors]}


@dataclass
class Submission:
    code: str
    filename: str
    competition_id: str
    project_id: str
    expected_time: int
    user_id: str
    warnings: list[str] = field(default_factory=list)


def _config_text(data: Any, files: Mapping[str, UploadedFile] | None) -> str | None:
    upload = files.get("config_file") if files is not None else None
    if upload is not None:
        if upload.size is None or upload.size > 64 * 1024:
            raise SubmissionError(400, {"config_file": ["The config file is larger than 64 KiB."]})
        raw = upload.read()
        upload.seek(0)
        try:
            return str(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise SubmissionError(400, {"config_file": ["The config file is not UTF-8 text."]}) from None
    value = data.get("config") if data is not None else None
    return str(value) if value is not None else None


def parse_config(data: Any, files: Mapping[str, UploadedFile] | None) -> dict[str, Any]:
    """The config JSON object (`data` is DRF's request.data: a QueryDict for multipart, hence Any)."""
    text = _config_text(data, files)
    if text is None:
        raise SubmissionError(400, {"config_file": ["Send the job's config JSON as config_file (or config)."]})
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise SubmissionError(400, {"config_file": [f"The config is not valid JSON: {exc}."]}) from None
    if not isinstance(config, dict):
        raise SubmissionError(400, {"config_file": ["The config must be a JSON object."]})
    return config


def read_config_token(request: Request) -> str | None:
    """The `token` of a submitted config, for clients that do not send a Bearer header."""
    if request.method != "POST":
        return None
    try:
        config = parse_config(request.data, request.FILES)
    except SubmissionError:
        return None
    token = config.get("token")
    return token if isinstance(token, str) and token else None


def validate_code(upload: UploadedFile | None) -> tuple[str, str]:
    if upload is None:
        raise SubmissionError(400, {"code": ["Attach the Python file as code."]})
    name = Path(upload.name or "").name
    if not name.endswith(".py"):
        raise SubmissionError(400, {"code": ["The code must be a Python file (.py)."]})
    if upload.size is None or upload.size > settings.JOBQUEUE_MAX_FILE_BYTES:
        raise SubmissionError(
            400, {"code": [f"The code file is larger than {settings.JOBQUEUE_MAX_FILE_BYTES} bytes."]}
        )
    raw = upload.read()
    if not raw.strip():
        raise SubmissionError(400, {"code": ["The code file is empty."]})
    try:
        code = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(400, {"code": ["The code file is not UTF-8 text."]}) from None
    if "\x00" in code:
        raise SubmissionError(400, {"code": ["The code file is binary, not Python source."]})
    return code, name


def validate_config(config: dict[str, Any], user: User) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    for key in ("competition_id", "project_id"):
        value = config.get(key)
        if not isinstance(value, str) or not NAME.fullmatch(value):
            errors[key] = ["Required: 1 to 100 letters, digits, dots, dashes or underscores."]
    expected = config.get("expected_time")
    low, high = settings.JOBQUEUE_MIN_EXPECTED_TIME, settings.JOBQUEUE_MAX_EXPECTED_TIME
    if isinstance(expected, str) and expected.strip().isdigit():
        expected = int(expected)
    if isinstance(expected, bool) or not isinstance(expected, int):
        errors["expected_time"] = [f"Required: a whole number of seconds from {low} to {high}."]
    elif not low <= expected <= high:
        errors["expected_time"] = [f"Must be from {low} to {high} seconds, not {expected}."]
    user_id = config.get("user_id", user.get_username())
    if not isinstance(user_id, str) or not user_id:
        errors["user_id"] = ["Must be your user name."]
    if errors:
        raise SubmissionError(400, errors)
    if user_id != user.get_username():
        raise SubmissionError(403, "The token does not belong to this user_id.")
    return {
        "competition_id": config["competition_id"],
        "project_id": config["project_id"],
        "expected_time": expected,
        "user_id": user_id,
    }


def parse_submission(user: User, data: Any, files: Mapping[str, UploadedFile]) -> Submission:
    """Check the uploaded code and config (400 for each problem, 403 for another user's user_id)."""
    code, filename = validate_code(files.get("code"))
    fields = validate_config(parse_config(data, files), user)
    return Submission(code=code, filename=filename, **fields)
