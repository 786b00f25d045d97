"""Results files hold another user's output: written 0640 in a 0750 directory, whatever the umask."""

from __future__ import annotations

import os
import stat

import pytest
from jobqueue_helpers import ML_CODE

from jobqueue import services, steps
from jobqueue.models import Job
from jobqueue.submission import Submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_umask():
    previous = os.umask(0)  # the most permissive: only explicit modes keep files private
    yield
    os.umask(previous)


def finished_job(user) -> Job:
    sub = Submission(
        code=ML_CODE, filename="s.py", competition_id="comp", project_id="p", expected_time=60, user_id=user.username
    )
    return services.submit(user, sub)


def test_results_files_are_not_world_readable(alice, settings, open_umask):
    job = finished_job(alice)
    first = steps.write_results(job)
    second = steps.write_results(job)  # same second: a second name, same mode
    assert first != second
    for path in (first, second):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o750
