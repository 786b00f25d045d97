"""Statements shared by every user of one shape (jobstats.services.read_shared): a user the process has
not served yet is read with the statements another user's request compiled, and gets exactly the rows
and count keys their own queryset would give (names of any characters)."""

from __future__ import annotations

import pytest
from django.db.models.query import QuerySet

from jobstats import listing, services
from jobstats.services import count_key, read_shared, shared_count_key, shared_user_list, stand_ins
from slurm.decoders import JobState
from slurm.visibility import jobs_of_user_by_uid

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

NAMES = ["owner", "jean.dupont", "o'brien-x", "user_42", "Ünïcode"]


@pytest.fixture
def users(personas):
    s = personas.slurm
    for name in NAMES[1:]:
        for index in range(3):
            s.job(name, "def-other", job_name=f"{name}-{index}")
        s.job(name, "def-other", state=JobState.PENDING)
        s.job(name, "def-other", state=JobState.RUNNING)
    return s


@pytest.fixture
def compiled(monkeypatch):
    """The querysets compiled into statements (Statement.of), from here on."""
    calls: list[QuerySet] = []
    real = services.Statement.of.__func__  # type: ignore[attr-defined]

    def counting(cls, queryset):
        calls.append(queryset)
        return real(cls, queryset)

    monkeypatch.setattr(services.Statement, "of", classmethod(counting))
    for memo in (services._PREPARED, services._SHARED_COUNT_KEYS, listing._USER_LISTS):
        memo.clear()
    return calls


def test_every_users_first_page_and_count_key_are_their_own_querysets(users, compiled):
    cluster = users.cluster
    for name in NAMES:
        page = listing.user_jobs_page(name, cluster)
        own = jobs_of_user_by_uid(name, cluster)
        expected = list(own.order_by("-time_start", "-time_end", "-job_db_inx"))
        pending = [job.pk for job in expected if not job.time_start and not job.time_end]
        assert [job.pk for job in page.object_list] == pending + [job.pk for job in expected if job.pk not in pending]
        assert page.paginator.count == own.count() > 0
        shared = shared_user_list(("user-page", cluster), name, cluster, listing._USER_LISTS)
        assert shared is not None, name
        assert shared_count_key(("user-page", cluster), lambda: shared.jobs, shared.values) == count_key(own), name
        running, waiting = listing.running_and_pending(name, cluster)
        assert sorted(job.pk for job in running) == sorted(j.pk for j in own.filter(time_start__gt=0, time_end=0))
        assert waiting == own.filter(time_start=0, time_end=0, state=0).count()
    # one user's request compiled the statements; every other user's read them
    assert len(compiled) == 2  # the first page (one UNION or the whole list) and the open jobs


def test_values_that_cannot_stand_in_read_their_own_queryset(users):
    assert stand_ins(["name", None]) is None and stand_ins(["", 3]) is None
    assert stand_ins([services._INT_MARKERS[0]]) is None and stand_ins(["a portalprepared0marker"]) is None
    jobs = users.models.job.objects

    def build(word: str):
        return jobs.filter(job_name__contains=word).order_by("pk")

    # a word inside a pattern (LIKE): letters and digits only, else NotShared
    assert [j.pk for j in read_shared(("test", "contains"), lambda: build("portalprepared0marker"), ["dupont"])] == [
        j.pk for j in build("dupont")
    ]
    with pytest.raises(services.NotShared):
        read_shared(("test", "contains"), lambda: build("portalprepared0marker"), ["jean.dupont"])
    # an exact value: any characters
    exact = read_shared(("test", "exact"), lambda: jobs.filter(job_name="portalprepared0marker"), ["o'brien-x-1"])
    assert [j.job_name for j in exact] == ["o'brien-x-1"]


def test_a_user_without_jobs_yet_has_no_shared_list(personas):
    assert (
        shared_user_list(
            ("user-page", personas.slurm.cluster), "nobody-yet", personas.slurm.cluster, listing._USER_LISTS
        )
        is None
    )
    assert listing.user_jobs_page("nobody-yet", personas.slurm.cluster).paginator.count == 0
