"""Malformed submissions get a 400 naming the field, never a 500: code nested too deeply for the
parser, a competition or project id with a trailing newline."""

from __future__ import annotations

import pytest
from jobqueue_helpers import bearer, submission

from jobqueue.models import Job

pytestmark = pytest.mark.django_db

SUBMIT = "/jobqueue/api/submit"


@pytest.mark.parametrize(
    "code",
    ["x = " + "-" * 100_000 + "1\n", "x = " + "+".join(["1"] * 200_000) + "\n", "x = " + "not " * 50_000 + "1\n"],
    ids=["unary", "binary-chain", "not-chain"],
)
def test_code_too_deeply_nested_to_parse_is_a_400(client, alice_key, settings, code):
    settings.JOBQUEUE_MAX_FILE_BYTES = 2 * 1024 * 1024
    client.raise_request_exception = False
    response = client.post(SUBMIT, submission(code=code), **bearer(alice_key))
    assert response.status_code == 400
    assert "code" in response.json()["errors"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("field", ["competition_id", "project_id"])
@pytest.mark.parametrize("value", ["comp\n", "comp\r\n", "comp\nrm -rf"])
def test_an_id_with_a_newline_is_a_400(client, alice_key, field, value):
    response = client.post(SUBMIT, submission(**{field: value}), **bearer(alice_key))
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Job.objects.exists()


def test_the_web_form_refuses_an_id_with_a_newline():
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jobqueue.forms import SubmitForm

    files = {"code": SimpleUploadedFile("a.py", b"print(1)\n")}
    form = SubmitForm({"competition_id": "comp\n", "project_id": "proj", "expected_time": 60}, files)
    assert not form.is_valid()
    assert set(form.errors) == {"competition_id"}
