"""Helpers of the job-queue tests: a seed-style submission and a Bearer header."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

ML_CODE = "import numpy as np\nprint(np.arange(3).sum())\n"


def submission(user_id="alice", *, code=ML_CODE, token=None, expected_time=60, filename="solution.py", **extra):
    config = {
        "competition_id": "comp-001",
        "project_id": "proj-001",
        "user_id": user_id,
        "expected_time": expected_time,
    }
    if token:
        config["token"] = token
    config.update(extra)
    return {
        "code": SimpleUploadedFile(filename, code.encode(), content_type="text/x-python"),
        "config_file": SimpleUploadedFile("config.json", json.dumps(config).encode(), content_type="application/json"),
    }


def bearer(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}
