"""The jobstats performance work (bench/jobstats): uid resolution, cached counts, the index-order
listing and its deep-page path give the same answers as the plain queries, in bounded queries."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.urls import reverse

from jobstats import services
from slurm.decoders import JobState, decode_state
from slurm.router import allow_writes
from slurm.visibility import jobs_of_user, jobs_of_user_by_uid, uid_of

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

API = "/api/jobs/"


@pytest.fixture
def many(personas):
    """25 finished jobs of owner, some starting at the same second (ties), plus running and pending ones."""
    slurm = personas.slurm
    base = slurm.now - 100_000
    for i in range(25):
        start = base + (i // 3) * 600
        slurm.job("owner", "def-owner", time_submit=start - 60, time_start=start, time_end=start + 100 + i)
    slurm.job("owner", "def-owner", state=JobState.RUNNING)
    slurm.job("owner", "def-owner", state=JobState.PENDING)
    return personas


def expected_ids(username: str, order: tuple[str, ...] = services.DEFAULT_ORDER) -> list[int]:
    """The plain query's order; in DEFAULT_ORDER the pending jobs (its last rows) moved to the front."""
    rows = list(jobs_of_user(username, "testcluster").order_by(*order).values_list("id_job", "time_start", "time_end"))
    if order == services.DEFAULT_ORDER:
        rows = [r for r in rows if not r[1] and not r[2]] + [r for r in rows if r[1] or r[2]]
    return [r[0] for r in rows]


def page(client, **params):
    response = client.get(API, {"format": "datatables", "columns[0][data]": "time_start", **params})
    assert response.status_code == 200
    return json.loads(response.content)


def test_uid_of_is_the_uid_of_the_users_jobs_and_cached(many, django_assert_num_queries):
    uid = uid_of("owner", "testcluster")
    assert uid == many.owner_job.id_user
    with django_assert_num_queries(0, using="slurm"):
        assert uid_of("owner", "testcluster") == uid
    assert uid_of("nobody-at-all", "testcluster") is None


def test_jobs_found_by_uid_are_the_jobs_of_the_user(many):
    assert sorted(jobs_of_user_by_uid("owner", "testcluster").values_list("job_db_inx", flat=True)) == sorted(
        jobs_of_user("owner", "testcluster").values_list("job_db_inx", flat=True)
    )


@pytest.mark.parametrize("direction", ["desc", "asc"])
def test_every_page_matches_the_plain_query(client, many, direction):
    client.force_login(many.owner)
    order = services.DEFAULT_ORDER if direction == "desc" else services.ASCENDING_ORDER
    wanted = expected_ids("owner", order)
    seen = []
    for start in range(0, len(wanted), 4):  # pages 3 and up take the index path (offset >= 2 * length)
        body = page(client, start=start, length=4, **{"order[0][column]": 0, "order[0][dir]": direction})
        assert body["recordsTotal"] == len(wanted)
        seen += [row["id_job"] for row in body["data"]]
    assert seen == wanted


def test_deep_page_falls_back_when_a_row_of_the_uid_is_hidden(client, many):
    hidden = many.slurm.job("owner", "def-owner")
    with allow_writes():
        type(hidden).objects.filter(job_db_inx=hidden.job_db_inx).update(deleted=1)
    client.force_login(many.owner)
    wanted = expected_ids("owner")
    assert hidden.id_job not in wanted
    body = page(client, start=8, length=4)
    assert [row["id_job"] for row in body["data"]] == wanted[8:12]


def test_counts_are_cached(client, many, django_assert_max_num_queries):
    client.force_login(many.owner)
    first = page(client, start=0, length=10, **{"search[value]": "job"})
    # only the page (its pending rows, then the others): both counts come from the cache
    with django_assert_max_num_queries(2, using="slurm"):
        again = page(client, start=0, length=10, **{"search[value]": "job"})
    assert again == first


@pytest.mark.parametrize("count", [1, 40])
def test_api_queries_stay_bounded(client, personas, count, django_assert_max_num_queries):
    for _ in range(count):
        personas.slurm.job("owner", "def-owner")
    client.force_login(personas.owner)
    # Cold: uid, the count, the page (its pending rows, then the others: one UNION on MariaDB), its
    # associations' users; a deep page counts the pending jobs and adds the index-only count and keys.
    with django_assert_max_num_queries(5, using="slurm"):
        first = page(client, start=0, length=10)
    with django_assert_max_num_queries(2, using="slurm"):  # warm: the page alone
        assert page(client, start=0, length=10) == first
    with django_assert_max_num_queries(5, using="slurm"):
        page(client, start=20, length=10)
    with django_assert_max_num_queries(5, using="slurm"):
        page(client, start=0, length=10, **{"search[value]": "job"})


def test_user_page_queries_stay_bounded_warm(client, many, django_assert_max_num_queries):
    client.force_login(many.owner)
    url = reverse("jobstats:user", kwargs={"username": "owner"})
    assert client.get(url).status_code == 200
    with django_assert_max_num_queries(3, using="slurm"):
        response = client.get(url)
    assert response.status_code == 200
    cache.clear()
    with django_assert_max_num_queries(4, using="slurm"):
        assert client.get(url).status_code == 200


def test_staff_get_the_users_own_pages_through_the_uid(client, many, django_assert_max_num_queries):
    """Staff opening a user's jobs: the same rows and counts as the user's own list, in as few queries."""
    client.force_login(many.owner)
    own = [page(client, start=start, length=4) for start in (0, 4, 12)]
    client.force_login(many.staff)
    cache.clear()
    with django_assert_max_num_queries(4, using="slurm"):
        first = page(client, start=0, length=4, username="owner")
    with django_assert_max_num_queries(5, using="slurm"):
        deep = page(client, start=12, length=4, username="owner")
    staff = [first, page(client, start=4, length=4, username="owner"), deep]
    for theirs, ours in zip(own, staff, strict=True):
        assert ours["recordsTotal"] == theirs["recordsTotal"] == len(expected_ids("owner"))
        assert ours["data"] == theirs["data"]


def test_staff_user_query_filters_on_the_uid(client, many):
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    client.force_login(many.staff)
    with CaptureQueriesContext(connections["slurm"]) as captured:
        page(client, start=0, length=4, username="owner")
    listing = [q["sql"] for q in captured.captured_queries if "LIMIT" in q["sql"] and "id_job" in q["sql"]]
    assert listing and all("id_user" in sql for sql in listing)


def test_staff_all_users_list_is_newest_submitted_first(client, many):
    """Every user's jobs in the order of the job table's archive_purge index (time_submit, time_end, key)."""
    client.force_login(many.staff)
    rows = jobs_of_user("owner", "testcluster").model.objects.filter(deleted=0)
    wanted = list(rows.order_by(*services.ALL_JOBS_ORDER).values_list("job_db_inx", flat=True))
    body = page(client, start=0, length=len(wanted) + 5)
    assert body["recordsTotal"] == body["recordsFiltered"] == len(wanted)
    assert [row["job_db_inx"] for row in body["data"]] == wanted
    # The page's own request (by start time, newest first) is served in the same index order.
    by_start = page(client, start=0, length=len(wanted) + 5, **{"order[0][column]": 0, "order[0][dir]": "desc"})
    assert [row["job_db_inx"] for row in by_start["data"]] == wanted
    latest = max(rows.values_list("time_submit", flat=True))
    pending = many.slurm.job("owner", "def-owner", state=JobState.PENDING, time_submit=latest + 1)
    cache.clear()
    assert page(client, start=0, length=1)["data"][0]["job_db_inx"] == pending.job_db_inx


def test_user_page_lists_pending_jobs_first(client, many):
    client.force_login(many.owner)
    response = client.get(reverse("jobstats:user", kwargs={"username": "owner"}))
    jobs = response.context["page"].object_list
    assert [job.id_job for job in jobs] == expected_ids("owner")[: len(jobs)]
    assert decode_state(jobs[0].state).name == "PENDING"  # job records: the table's tag decodes them


def test_a_stale_count_is_answered_at_once_then_recounted_in_the_background(
    client, many, monkeypatch, django_assert_max_num_queries
):
    client.force_login(many.owner)
    before = page(client, start=0, length=4)["recordsTotal"]
    many.slurm.job("owner", "def-owner")
    later: list = []
    monkeypatch.setattr(services, "in_background", later.append)
    clock = time.time
    monkeypatch.setattr(services, "time", SimpleNamespace(time=lambda: clock() + services.COUNT_CACHE_SECONDS + 1))
    with django_assert_max_num_queries(2, using="slurm"):  # the page only: the stale count is answered
        assert page(client, start=0, length=4)["recordsTotal"] == before
    assert len(later) == 1
    page(client, start=0, length=4)
    assert len(later) == 1  # one recount at a time
    later[0]()
    assert page(client, start=0, length=4)["recordsTotal"] == before + 1


def test_a_background_recount_closes_its_connections(monkeypatch):
    closed = []
    monkeypatch.setattr(services.connections, "close_all", lambda: closed.append(True))
    done = []
    services.in_background(lambda: done.append(1))
    for _ in range(100):
        if closed:
            break
        time.sleep(0.01)
    assert done == [1] and closed == [True]


def test_a_stale_count_is_corrected_by_the_last_page_read(client, many):
    """A job submitted since the count was cached: the whole list in one page shows it, and the totals with it."""
    client.force_login(many.owner)
    before = page(client, start=0, length=100)
    assert before["recordsTotal"] == before["recordsFiltered"] == len(before["data"])
    many.slurm.job("owner", "def-owner")
    after = page(client, start=0, length=100)
    assert after["recordsTotal"] == after["recordsFiltered"] == len(after["data"]) == len(before["data"]) + 1
    # the corrected count replaced the cached one: a first page that does not reach the end agrees
    assert page(client, start=0, length=4)["recordsTotal"] == len(after["data"])


def test_a_full_page_past_a_stale_count_recounts(client, many):
    client.force_login(many.owner)
    total = page(client, start=0, length=4)["recordsTotal"]
    for _ in range(3):
        many.slurm.job("owner", "def-owner")
    # the cached count ends inside this page; the page is full, so the count was behind
    body = page(client, start=total - 2, length=4)
    assert len(body["data"]) == 4
    assert body["recordsTotal"] == body["recordsFiltered"] == total + 3


def test_a_filtered_stale_count_is_corrected_and_keeps_its_total(client, many):
    client.force_login(many.owner)
    search = {"search[value]": "job"}
    before = page(client, start=0, length=100, **search)
    many.slurm.job("owner", "def-owner", job_name="job-new")
    after = page(client, start=0, length=100, **search)
    assert after["recordsFiltered"] == len(after["data"]) == before["recordsFiltered"] + 1


def test_the_user_page_shows_a_job_submitted_after_its_count_was_cached(client, many):
    client.force_login(many.owner)
    url = reverse("jobstats:user", kwargs={"username": "owner"})
    before = client.get(url).context["page"]
    new = many.slurm.job("owner", "def-owner")
    after = client.get(url).context["page"]
    assert after.paginator.count == before.paginator.count + 1 == len(after.object_list)
    assert new.id_job in [job.id_job for job in after.object_list]


def test_a_stale_count_of_zero_is_corrected_by_the_page_read(client, many):
    client.force_login(many.owner)
    search = {"search[value]": "job-later"}
    assert page(client, start=0, length=10, **search)["recordsFiltered"] == 0  # counted and cached: none
    new = many.slurm.job("owner", "def-owner", job_name="job-later")
    body = page(client, start=0, length=10, **search)
    assert body["recordsFiltered"] == len(body["data"]) == 1
    assert body["data"][0]["id_job"] == new.id_job


def test_a_recount_found_during_a_request_starts_after_the_response(client, many, monkeypatch):
    """The request that finds its count stale is answered before its recount starts; the recount then unlocks."""
    from django.core.cache import cache

    client.force_login(many.owner)
    page(client, start=0, length=4)
    started: list = []
    monkeypatch.setattr(services, "_start", lambda work: started.append(work))
    clock = time.time
    monkeypatch.setattr(services, "time", SimpleNamespace(time=lambda: clock() + services.COUNT_CACHE_SECONDS + 1))
    seen_during: list = []
    real_page = services.pending_first_page

    def watching(*args, **kwargs):
        seen_during.append(len(started))
        return real_page(*args, **kwargs)

    monkeypatch.setattr(services, "pending_first_page", watching)
    monkeypatch.setattr("jobstats.queries.pending_first_page", watching)
    page(client, start=0, length=4)
    assert seen_during == [0]  # not started while the page was read
    assert len(started) == 1  # started when the response was done

    def locks() -> list[str]:  # the test settings' cache is local memory
        return [key for key in cache._cache if key.endswith(":recount")]

    assert len(locks()) == 1
    started[0]()
    assert locks() == []  # a recount done unlocks: the next expiry recounts again


def test_in_background_outside_a_request_starts_at_once(monkeypatch):
    started: list = []
    monkeypatch.setattr(services, "_start", lambda work: started.append(work))
    services.in_background(print)
    assert started == [print]


@pytest.fixture
def submitted(personas):
    """190 jobs of owner whose submit order differs from their start order: long and short waits, ties,
    pending ones and ones cancelled while pending (never started, submitted late)."""
    slurm = personas.slurm
    base = slurm.now - 500_000
    for i in range(120):
        submit = base + i * 300 + (i % 4) * 10  # ties in pairs below
        wait = (i * 7919) % 20_000  # some wait hours, others seconds
        slurm.job("owner", "def-owner", time_submit=submit - (submit % 20), time_start=submit + wait,
                  time_end=submit + wait + 50 + i)  # fmt: skip
    for i in range(60):  # submitted first, started last (a long wait): the newest starts are the oldest submits
        slurm.job("owner", "def-owner", time_submit=base - 100_000 + i, time_start=slurm.now - 200 + i,
                  time_end=slurm.now - 100 + i)  # fmt: skip
    for i in range(4):
        slurm.job("owner", "def-owner", state=JobState.PENDING, time_submit=slurm.now - 1000 * i)
    for i in range(6):  # cancelled before they started: time_start 0, an end, submitted anywhere
        slurm.job("owner", "def-owner", state=JobState.CANCELLED, time_submit=base + 5_000 * i + 7,
                  time_start=0, time_end=base + 5_000 * i + 900)  # fmt: skip
    return personas


@pytest.mark.parametrize(("start", "length"), [(0, 10), (0, 50), (7, 10), (40, 25), (125, 10), (185, 10), (0, 1000)])
def test_tts_submit_order_pages_equal_the_plain_sort(client, submitted, start, length, django_assert_max_num_queries):
    """TT's page orders one user's jobs by submit time: read along sacct_def with a stopping rule, same rows."""
    client.force_login(submitted.owner)
    expected = expected_ids("owner", services.ALL_JOBS_ORDER)
    assert len(expected) == 191  # and personas' owner_job
    params = {"columns[2][data]": "time_submit", "order[0][column]": "2", "order[0][dir]": "desc"}
    page(client, start=0, length=10, **params)  # the counts cached
    with django_assert_max_num_queries(6, using="slurm"):
        body = page(client, start=start, length=length, **params)
    assert [row["id_job"] for row in body["data"]] == expected[start : start + length]
    assert body["recordsTotal"] == 191


def test_submit_order_falls_back_to_the_sort_when_a_row_breaks_the_rule(client, submitted):
    """A row submitted after it started (never seen from Slurm) makes the page the plain query's."""
    submitted.slurm.job("owner", "def-owner", time_submit=submitted.slurm.now, time_start=submitted.slurm.now - 400_000,
                        time_end=submitted.slurm.now - 399_000)  # fmt: skip
    client.force_login(submitted.owner)
    expected = expected_ids("owner", services.ALL_JOBS_ORDER)
    params = {"columns[2][data]": "time_submit", "order[0][column]": "2", "order[0][dir]": "desc"}
    assert [row["id_job"] for row in page(client, start=0, length=10, **params)["data"]] == expected[:10]


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_a_users_jobs_by_submit_time_never_walk_every_users_index(client, submitted, direction):
    """Sorted by a column only a global index leads (archive_purge), one user's rows are sorted as
    ``time_submit + 0``: the user's own rows, not a walk over every user's jobs; same order."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    client.force_login(submitted.owner)
    order = services.ALL_JOBS_ORDER if direction == "desc" else services.ALL_JOBS_ASCENDING
    expected = expected_ids("owner", order)
    params = {"columns[2][data]": "time_submit", "order[0][column]": "2", "order[0][dir]": direction}
    matching = set(
        jobs_of_user("owner", "testcluster").filter(job_name__icontains="job").values_list("id_job", flat=True)
    )
    assert len(matching) > 13
    with CaptureQueriesContext(connections["slurm"]) as queries:
        body = page(client, start=3, length=10, **params, **{"search[value]": "job"})
    assert [row["id_job"] for row in body["data"]] == [i for i in expected if i in matching][3:13]
    reads = [q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"]]
    assert reads and all('"time_submit" + 0)' in sql or "`time_submit` + 0)" in sql for sql in reads)


def test_the_home_cards_figures_read_only_open_and_recent_rows(personas, django_assert_max_num_queries):
    """headline(): running, pending, ended in 30 days and their CPU-hours; a job ended 40 days ago is not counted."""
    s = personas.slurm
    now = int(time.time())
    s.job("owner", "def-owner", state=JobState.RUNNING, time_start=now - 600)
    s.job("owner", "def-owner", state=JobState.PENDING)
    s.job("owner", "def-owner", time_start=now - 10 * 86400 - 7200, time_end=now - 10 * 86400, cpus_req=4)
    s.job("owner", "def-owner", time_start=now - 40 * 86400 - 7200, time_end=now - 40 * 86400, cpus_req=64)
    recent_before = jobs_of_user("owner", "testcluster").filter(time_end__gte=now - 30 * 86400).count()
    with django_assert_max_num_queries(2, using="slurm"):
        figures = [str(figure.value) for figure in services.headline(personas.owner, cluster="testcluster")]
    running = jobs_of_user("owner", "testcluster").filter(state=1, time_end=0).count()
    assert figures[:3] == [str(running), "1", str(recent_before)]
    hours = sum(
        (job.time_end - job.time_start) * job.cpus_req
        for job in jobs_of_user("owner", "testcluster").filter(time_end__gte=now - 30 * 86400, time_start__gt=0)
    )
    assert figures[3] == f"{hours / 3600:,.0f}" and hours >= 4 * 7200


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 30])
def test_a_first_page_read_as_one_union_equals_the_two_reads(many, monkeypatch, limit):
    """Where the Slurm DB can (MariaDB), a first page's pending and started parts are one UNION ALL, whose
    rows come in no particular order: the page is the same as the two reads'."""
    import random

    from django.db import connections

    many.slurm.job("owner", "def-owner", state=JobState.PENDING)
    many.slurm.job("owner", "def-owner", state=JobState.PENDING)
    jobs = jobs_of_user_by_uid("owner", "testcluster")

    def read(build, offset, size, part):
        return list(build()[offset : offset + size])

    two = services.pending_first_page(jobs, 0, limit, read)
    asked: list = []

    def read_parts(parts):
        asked.append([part for _build, part in parts])
        rows = [row for build, _part in parts for row in build()[:limit]]
        random.Random(limit).shuffle(rows)
        return rows

    monkeypatch.setattr(connections["slurm"].features, "supports_slicing_ordering_in_compound", True)
    one = services.pending_first_page(jobs, 0, limit, read, read_parts=read_parts)
    assert asked == [["pending", "started"]]
    assert [job.job_db_inx for job in one] == [job.job_db_inx for job in two] and len(one) == limit


def test_assoc_users_name_each_association_once_per_process(personas, django_assert_num_queries):
    """The API's usernames: each association's user (an account's row: ""), read once, then from the memo."""
    from slurm.visibility import assoc_users

    assoc = personas.slurm.models.assoc.objects
    owner = assoc.filter(user="owner").values_list("id_assoc", flat=True).first()
    account = assoc.filter(user="").values_list("id_assoc", flat=True).first()
    with django_assert_num_queries(1, using="slurm"):
        assert assoc_users([owner, account, 987654], "testcluster") == {owner: "owner", account: ""}
    with django_assert_num_queries(0, using="slurm"):
        assert assoc_users([owner, account], "testcluster") == {owner: "owner", account: ""}
    with django_assert_num_queries(1, using="slurm"):  # an id not in the table is not kept: asked again
        assert assoc_users([owner, 987654], "testcluster") == {owner: "owner"}
