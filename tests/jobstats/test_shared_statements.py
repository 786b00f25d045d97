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

NAMES = ["owner", "jean.dupont", "o'brien-x", "user_42", "Ünïcode", "mail+x@site"]
API_NAMES = ["owner", "jean.dupont", "user_42", "mail+x@site"]  # the API's names: jobstats.serializers.NAME


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
        assert shared_count_key(("user-page", cluster), lambda s=shared: s.jobs, shared.values) == count_key(own), name
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


def api_page(client, **params):
    response = client.get("/api/jobs/", {"format": "datatables", "draw": 1, "start": 0, "length": 3, **params})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"columns[0][data]": "time_submit", "order[0][column]": "0", "order[0][dir]": "desc"},
        {"columns[0][data]": "job_name", "order[0][column]": "0", "order[0][dir]": "asc"},
        {"search[value]": "1"},
        {"state": "PENDING"},
        # the query's own values equal to a stand-in: never taken for the user's name or uid
        {"submitted_after": "2147480001"},
        {"search[value]": "2147480001"},
        {"search[value]": "portalprepared0marker"},
        {"partition": "portalprepared0marker"},
    ],
)
def test_the_api_answers_every_user_as_without_shared_statements(users, client, compiled, monkeypatch, params):
    """Users (as themselves, and as staff opens them) are answered exactly what each one's own queryset gives."""
    from factories import StaffFactory, UserFactory

    from jobstats import api, queries

    staff = StaffFactory()
    answers = {}
    for shared in (True, False):
        for memo in (queries._SELECTIONS, queries._SHAPES, api._QUERIES):
            memo.clear()
        if not shared:
            monkeypatch.setattr(queries, "_shared", lambda *args: None)
        for name in API_NAMES:
            client.force_login(UserFactory(username=name) if shared else get_user(name))
            own = api_page(client, username=name, **params)
            client.force_login(staff)
            answers[(shared, name)] = (own, api_page(client, username=name, **params))
    for name in API_NAMES:
        assert answers[(True, name)] == answers[(False, name)], name
        (status, body), _staff = answers[(True, name)]
        assert status == 200 and body["recordsTotal"] > 0, name
    assert answers[(True, "owner")] != answers[(True, "jean.dupont")]


def get_user(name):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=name)


def test_a_query_validated_for_one_user_serves_another_and_a_bad_name_is_still_a_400(users, client, monkeypatch):
    from factories import StaffFactory

    from jobstats import api

    validated: list = []
    real = api.JobQuerySerializer
    monkeypatch.setattr(api, "JobQuerySerializer", lambda *a, **kw: validated.append(kw) or real(*a, **kw))
    api._QUERIES.clear()
    client.force_login(StaffFactory())
    for name in API_NAMES:
        status, body = api_page(client, username=name)
        assert status == 200 and body["recordsTotal"] > 0, name
    assert len([kw for kw in validated if kw]) == 1  # the first user's request; the others: only the name
    # any other name is answered as a request validated whole (a fresh memo) answers it
    for name in ("", " ", "-x", "a b", "x" * 200, "a\n", " owner ", "owner\n"):
        answer = api_page(client, username=name)
        api._QUERIES.clear()
        assert answer == api_page(client, username=name), repr(name)
        api_page(client, username="owner")  # the template again
    assert api_page(client, username="-x") == (400, {"username": ["This value does not match the required pattern."]})


def test_the_apis_count_keys_are_the_users_own_querysets(users):
    """A shared selection's count keys are those its user's own querysets have (the counts cached for both)."""
    from factories import StaffFactory, UserFactory

    from jobstats import queries

    staff = StaffFactory()
    for name in API_NAMES:
        if name != "owner":
            UserFactory(username=name)
        for viewer, query in ((get_user(name), queries.JobListQuery()), (staff, queries.JobListQuery(username=name))):
            queries._SELECTIONS.clear()
            prepared = queries._prepare(viewer, users.cluster, query)
            assert prepared.shared is not None, name
            built = queries._built(viewer, users.cluster, query, prepared.key)
            assert (prepared.base_key, prepared.jobs_key) == (built.base_key, built.jobs_key) != (None, None), name
            assert [job.pk for job in prepared.jobs] == [job.pk for job in built.jobs]


def test_a_process_start_compiles_what_every_users_first_pages_read(users, client, compiled, settings):
    """After jobstats' warm_up (userportal.warmup), a user's page and the API's first pages (the JSON
    default and the portal's table, own and staff) compile nothing."""
    from django.apps import apps
    from factories import StaffFactory, UserFactory

    from jobstats import queries

    settings.SLURM_CLUSTERS = [users.cluster]
    for memo in (queries._SELECTIONS, queries._SHAPES, services._SHARED_COUNT_KEYS):
        memo.clear()
    apps.get_app_config("jobstats").warm_up()
    assert compiled  # the statements, compiled without a database read
    compiled.clear()
    table = {"format": "datatables", "draw": 1, "start": 0, "length": 50}
    table |= {"columns[7][data]": "time_start", "order[0][column]": "7", "order[0][dir]": "desc"}
    for name in ("jean.dupont", "user_42"):
        client.force_login(UserFactory(username=name))
        assert client.get(f"/secure/jobstats/{name}/").status_code == 200
        assert client.get("/api/jobs/", {"username": name, **table}).json()["recordsTotal"] == 5
        assert client.get("/api/jobs/", {"format": "json"}).status_code == 200
        client.force_login(StaffFactory())
        assert client.get("/api/jobs/", {"username": name, **table}).json()["recordsTotal"] == 5
    assert compiled == []
