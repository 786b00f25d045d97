"""/api/jobs/: TT's DataTables contract, filters, scoping for each persona, 400s, the schema, query counts."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from slurm.decoders import JobState

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

API = "/api/jobs/"
TT_KEYS = {
    "id_job", "job_name", "account", "time_submit", "time_eligible", "time_start", "time_end", "timelimit",
    "get_state_display", "nodes", "username",
}  # fmt: skip


def get(client, **params):
    response = client.get(API, params)
    return response, json.loads(response.content)


def datatables(client, **params):
    return get(client, format="datatables", **params)


def ids_of(body, key="data"):
    return {row["id_job"] for row in body[key]}


@pytest.fixture
def owner_client(client, personas):
    client.force_login(personas.owner)
    return client


def test_datatables_envelope_and_rows(owner_client, jobs):
    response, body = datatables(owner_client, draw=7, start=0, length=100)
    assert response.status_code == 200
    assert set(body) == {"draw", "recordsTotal", "recordsFiltered", "data"}
    assert body["draw"] == 7
    assert body["recordsTotal"] == body["recordsFiltered"] == len(body["data"])
    row = next(r for r in body["data"] if r["id_job"] == jobs.gpu.id_job)
    assert TT_KEYS <= set(row)
    assert row["username"] == "owner"
    assert row["time_start"].endswith("Z")
    assert row["timelimit"] == 240
    assert row["nodes"] == ["node01"]
    assert row["get_state_display"] == "Completed"
    pending = next(r for r in body["data"] if r["id_job"] == jobs.pending.id_job)
    assert pending["time_start"] is None
    assert pending["time_end"] is None


def test_default_order_is_pending_first_then_most_recently_started(owner_client, jobs):
    _response, body = datatables(owner_client)
    waiting = [row for row in body["data"] if row["time_start"] is None and row["time_end"] is None]
    assert waiting and body["data"][: len(waiting)] == waiting
    starts = [row["time_start"] or "" for row in body["data"][len(waiting) :]]
    assert starts == sorted(starts, reverse=True)


def test_order_search_and_paging_parameters(owner_client, jobs):
    params = {
        "columns[0][data]": "id_job",
        "columns[1][data]": "time_submit",
        "order[0][column]": "1",
        "order[0][dir]": "asc",
    }
    _response, body = datatables(owner_client, start=1, length=2, **params)
    assert len(body["data"]) == 2
    _response, everything = datatables(owner_client, length=1000, **params)
    submits = [row["time_submit"] for row in everything["data"]]
    assert submits == sorted(submits)
    assert [r["id_job"] for r in body["data"]] == [r["id_job"] for r in everything["data"][1:3]]
    _response, found = datatables(owner_client, **{"search[value]": "train"})
    assert ids_of(found) == {jobs.gpu.id_job}
    assert found["recordsTotal"] > found["recordsFiltered"] == 1
    _response, by_id = datatables(owner_client, **{"search[value]": str(jobs.dep.id_job)})
    assert jobs.dep.id_job in ids_of(by_id)


@pytest.mark.parametrize("value", ["PENDING", "Pending", "pending"])
def test_state_filter_takes_names_and_labels(owner_client, jobs, value):
    _response, body = datatables(owner_client, state=value)
    assert ids_of(body) == {jobs.pending.id_job}


def test_state_filter_fixes_tt_labels(owner_client, jobs, personas):
    oom = personas.slurm.job("owner", "def-owner", state=JobState.OUT_OF_MEMORY)
    deadline = personas.slurm.job("owner", "def-owner", state=JobState.DEADLINE)
    requeued = jobs.requeued[0]
    for value, expected in (
        ("Oom", oom),
        ("OUT_OF_MEMORY", oom),
        ("Out of memory", oom),
        ("End", deadline),
        ("DEADLINE", deadline),
        ("REQUEUED", requeued),
    ):
        _response, body = get(owner_client, status=value) if value in ("Oom", "End") else get(owner_client, state=value)
        assert ids_of(body, "results") == {expected.id_job}, value
    _response, body = datatables(owner_client, state="RUNNING,PENDING")
    assert ids_of(body) == {jobs.running.id_job, jobs.pending.id_job}


def test_partition_and_date_filters(owner_client, jobs, personas):
    _response, body = datatables(owner_client, partition="gpu")
    assert ids_of(body) == {jobs.gpu.id_job}
    now = personas.slurm.now
    _response, body = datatables(owner_client, submitted_after=now - 7400, submitted_before=now - 7280)
    assert ids_of(body) == {jobs.gpu.id_job}
    _response, body = datatables(owner_client, ended_before="2000-01-01")
    assert body["data"] == []


def test_json_format_is_a_paginated_list(owner_client, jobs):
    response, body = get(owner_client, format="json", limit=2)
    assert response.status_code == 200
    assert set(body) == {"count", "next", "previous", "results"}
    assert len(body["results"]) == 2
    assert "offset=2" in body["next"]
    assert body["previous"] is None
    _response, second = get(owner_client, limit=2, offset=2)
    assert "offset" not in second["previous"]
    assert second["previous"] == "http://testserver/api/jobs/?limit=2"
    _response, unlimited = get(owner_client, offset=1)
    assert unlimited["previous"] == "http://testserver/api/jobs/"  # no limit asked: none added


def test_datatables_draw_is_echoed_as_validated(owner_client, jobs):
    _response, body = datatables(owner_client, draw="3.0", start=1, length=2)
    assert body["draw"] == 3
    assert len(body["data"]) == 2
    _response, empty = datatables(owner_client, draw="", ended_before="2000-01-01")
    assert (empty["draw"], empty["recordsFiltered"], empty["data"]) == (0, 0, [])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "datatables", "length": "5000"}, "length"),
        ({"format": "datatables", "length": "0"}, "length"),
        ({"format": "datatables", "start": "-1"}, "start"),
        ({"limit": "1001"}, "limit"),
        ({"state": "NOPE"}, "state"),
        ({"status": "End,Sleeping"}, "status"),
        ({"format": "datatables", "order[0][column]": "3"}, "order[0][column]"),
        ({"format": "datatables", "columns[0][data]": "username", "order[0][column]": "0"}, "order[0][column]"),
        (
            {"format": "datatables", "columns[0][data]": "id_job", "order[0][column]": "0", "order[0][dir]": "up"},
            "order[0][dir]",
        ),
        ({"ordering": "password"}, "ordering"),
        ({"submitted_after": "yesterday"}, "submitted_after"),
        ({"username": "a|b"}, "username"),
        ({"account": "def-owner;drop"}, "account"),
        ({"partition": "cpu,g p u"}, "partition"),
        ({"format": "xml"}, "format"),
        ({"draw": "x"}, "draw"),
    ],
)
def test_bad_parameters_get_a_400_with_field_errors(owner_client, jobs, params, field):
    response = owner_client.get(API, params)
    assert response.status_code == 400
    assert field in json.loads(response.content)


# --- Scoping --------------------------------------------------------------------------------
def test_users_see_their_own_jobs_and_username_is_ignored(client, personas, jobs):
    client.force_login(personas.member)
    _response, own = datatables(client)
    _response, asked = datatables(client, username="owner")
    assert ids_of(own) == ids_of(asked) == {jobs.member.id_job}


def test_staff_see_any_user_and_everyone(client, personas, jobs):
    client.force_login(personas.staff)
    _response, owner = datatables(client, username="owner", length=1000)
    assert jobs.gpu.id_job in ids_of(owner)
    assert jobs.member.id_job not in ids_of(owner)
    _response, everyone = datatables(client, length=1000)
    assert {jobs.gpu.id_job, jobs.member.id_job} <= ids_of(everyone)


def test_members_see_every_users_jobs_of_their_account(client, personas, jobs):
    client.force_login(personas.member)
    _response, body = datatables(client, account="def-owner", length=1000)
    assert {jobs.gpu.id_job, jobs.member.id_job} <= ids_of(body)
    assert {row["username"] for row in body["data"]} == {"owner", "member"}
    _response, mine = datatables(client, account="def-owner", username="member")
    assert ids_of(mine) == {jobs.member.id_job}


def test_outsiders_see_nothing_of_another_account(client, personas, jobs):
    client.force_login(personas.outsider)
    _response, body = datatables(client, account="def-owner")
    assert body["data"] == []
    assert body["recordsTotal"] == 0


@pytest.mark.parametrize(("persona", "status"), [("owner", 200), ("member", 200), ("staff", 200), ("outsider", 404)])
def test_job_detail_follows_the_same_scoping(client, personas, jobs, persona, status):
    client.force_login(getattr(personas, persona))
    response = client.get(reverse("jobstats:api-job", kwargs={"job_db_inx": jobs.gpu.job_db_inx}))
    assert response.status_code == status
    if status == 200:
        assert json.loads(response.content)["id_job"] == jobs.gpu.id_job


def test_anonymous_is_refused_in_json(jobs):
    client = Client()
    assert client.get(API).status_code in (401, 403)
    assert client.get(reverse("jobstats:api-job", kwargs={"job_db_inx": jobs.gpu.job_db_inx})).status_code in (401, 403)


def test_token_authentication_works(personas, jobs):
    from userportal.tokens import issue_token

    _token, key = issue_token(personas.owner)
    response = Client().get(API, {"format": "datatables"}, HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    assert jobs.gpu.id_job in ids_of(json.loads(response.content))


def test_the_slurm_database_down_is_a_json_503(owner_client, jobs):
    import copy

    from django.db import connections

    original = connections["slurm"]
    settings_dict = copy.deepcopy(original.settings_dict)
    settings_dict["NAME"] = "/nonexistent-dir/slurm.sqlite3"
    broken = original.__class__(settings_dict, alias="slurm")
    connections["slurm"] = broken
    try:
        response = owner_client.get(API, {"format": "datatables"})
    finally:
        broken.close()
        connections["slurm"] = original
    assert response.status_code == 503
    assert json.loads(response.content)["source"] == "slurmdb"


# --- Schema and query counts ---------------------------------------------------------------
def test_the_openapi_schema_documents_the_jobs_api_and_stays_valid(owner_client):
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    assert "/api/jobs/" in schema["paths"]
    assert "/api/jobs/{job_db_inx}/" in schema["paths"]
    names = {p["name"] for p in schema["paths"]["/api/jobs/"]["get"]["parameters"]}
    assert {
        "format",
        "draw",
        "start",
        "length",
        "username",
        "account",
        "state",
        "search[value]",
        "order[0][column]",
    } <= names
    response = owner_client.get(reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200


@pytest.mark.parametrize("count", [1, 30])
def test_query_count_does_not_grow_with_the_jobs(client, personas, count, django_assert_max_num_queries):
    for _ in range(count):
        personas.slurm.job("owner", "def-owner")
    client.force_login(personas.member)
    params = {
        "format": "datatables",
        "account": "def-owner",
        "state": "COMPLETED",
        "search[value]": "job",
        "length": 1000,
    }
    # cold: the counts, the page and its associations' users (read once per process)
    with django_assert_max_num_queries(3), django_assert_max_num_queries(4, using="slurm"):
        response = client.get(API, params)
    assert len(json.loads(response.content)["data"]) == count + 2
    with django_assert_max_num_queries(3), django_assert_max_num_queries(3, using="slurm"):
        assert client.get(API, params).content == response.content
    with django_assert_max_num_queries(3), django_assert_max_num_queries(1, using="slurm"):
        client.get(reverse("jobstats:api-job", kwargs={"job_db_inx": personas.owner_job.job_db_inx}))


def test_job_records_built_directly_equal_drfs_field_by_field_path(personas, jobs):
    """JobRecordSerializer builds its rows without DRF's per-field path: the same dict for every kind of record."""
    from rest_framework import serializers

    from jobstats.queries import api_columns, with_username
    from jobstats.serializers import JobRecordSerializer

    s = personas.slurm
    s.job("owner", "def-owner", job_name="", nodelist="node[01-03],gpu7", timelimit=0xFFFFFFFF)
    s.job("owner", "def-owner", het_job_id=900, het_job_offset=1, job_name="het", timelimit=0xFFFFFFFE)
    s.job("owner", "def-owner", state=JobState.TIMEOUT | 0x8000, partition="")
    records = with_username(list(api_columns(s.models.job.objects.all()).order_by("job_db_inx")), "testcluster")
    assert len(records) >= 15
    serializer = JobRecordSerializer()
    for record in records:
        expected = dict(serializers.Serializer.to_representation(serializer, record))
        assert serializer.to_representation(record) == expected
    assert JobRecordSerializer(records, many=True).data[0] == serializer.to_representation(records[0])


def test_every_users_jobs_sort_only_along_an_index(client, personas, jobs):
    """A sort of every user's jobs by name (no index) would read and sort the whole table per request: a 400."""
    client.force_login(personas.staff)
    sort_by_name = {"columns[1][data]": "job_name", "order[0][column]": "1", "order[0][dir]": "asc"}
    response, body = datatables(client, **sort_by_name)
    assert response.status_code == 400
    assert "order[0][column]" in body and "name a user or an account" in body["order[0][column]"][0]
    response, body = get(client, ordering="job_name")
    assert response.status_code == 400 and "ordering" in body
    by_submit = {"columns[1][data]": "time_submit", "order[0][column]": "1", "order[0][dir]": "desc"}
    assert datatables(client, **by_submit)[0].status_code == 200
    response, body = datatables(client, username="owner", length=1000, **sort_by_name)  # one user's: fine
    assert response.status_code == 200
    names = [row["job_name"] for row in body["data"]]
    assert names == sorted(names)


def test_a_number_searches_job_ids_only_in_every_users_jobs(client, personas, jobs):
    """In every user's jobs a number is a job id (the id indexes); in one user's jobs it also matches names."""
    numbered = personas.slurm.job("owner", "def-owner", job_name=f"run-{jobs.gpu.id_job}")
    client.force_login(personas.staff)
    _response, everyone = datatables(client, length=1000, **{"search[value]": str(jobs.gpu.id_job)})
    assert ids_of(everyone) == {jobs.gpu.id_job}
    _response, owners = datatables(client, username="owner", length=1000, **{"search[value]": str(jobs.gpu.id_job)})
    assert ids_of(owners) == {jobs.gpu.id_job, numbered.id_job}


def test_read_statement_gives_the_querysets_instances(personas, jobs):
    """read_statement makes its instances without Model.__init__: the same values, annotations and deferred loading."""
    from django.db.models import OuterRef, Subquery

    from jobstats.queries import API_COLUMNS
    from jobstats.services import read_statement

    s = personas.slurm
    s.job("owner", "def-owner", job_name="", nodelist="node[01-03]", mem_req=2**63 + 500)
    columns = (*API_COLUMNS, "mem_req")  # an unsigned 64-bit column: its converter must run
    assoc = s.models.assoc.objects.filter(id_assoc=OuterRef("id_assoc")).values("user")[:1]
    queryset = s.models.job.objects.only(*columns).annotate(username=Subquery(assoc)).order_by("-job_db_inx")[:50]
    expected = list(queryset)
    read = read_statement(("test", "read_statement"), lambda: queryset)
    again = read_statement(("test", "read_statement"), lambda: pytest.fail("compiled once"))
    assert len(read) == len(expected) >= 10 and [r.job_db_inx for r in again] == [r.job_db_inx for r in read]
    for got, want in zip(read, expected, strict=True):
        assert type(got) is type(want) and got.pk == want.pk
        assert {name: getattr(got, name) for name in (*columns, "username")} == {
            name: getattr(want, name) for name in (*columns, "username")
        }
        assert got.get_deferred_fields() == want.get_deferred_fields() and "tres_alloc" in got.get_deferred_fields()
        assert not got._state.adding and got._state.db == want._state.db
        assert got.tres_alloc == want.tres_alloc  # a deferred field loads on first read, as from the queryset
    assert max(r.mem_req for r in read) == 2**63 + 500  # the unsigned column's converter ran


def test_read_prepared_compiles_once_and_reads_what_the_queryset_reads(personas, jobs):
    """read_prepared puts each call's values in the place of its stand-ins: the queryset's rows for every value."""
    from jobstats import services
    from jobstats.services import read_prepared

    s = personas.slurm
    first = s.job("owner", "def-owner", submit_line="sbatch --dependency=afterok:4242 b.sh")
    second = s.job("owner", "def-owner", submit_line="sbatch --dependency=afterok:4243 b.sh", id_qos=0)
    built = []

    def build(inx: int, word: str):
        built.append((inx, word))
        return s.models.job.objects.filter(job_db_inx__gte=inx, submit_line__contains=word).order_by("job_db_inx")

    cases = [(0, "4242"), (first.job_db_inx, "afterok"), (second.job_db_inx, "4243"), (second.job_db_inx + 1, "b")]
    for inx, word in cases:
        got = read_prepared(("test", "read_prepared"), build, inx, word)
        assert [row.pk for row in got] == [row.pk for row in build(inx, word)], (inx, word)
        assert all(type(row) is s.models.job for row in got)
    assert [row.job_db_inx for row in read_prepared(("test", "read_prepared"), build, 0, "4242")] == [first.job_db_inx]
    compiled = [call for call in built if call[0] in services._INT_MARKERS]
    assert len(compiled) == 1  # the stand-ins' statement, compiled once for every value
    # values the stand-ins cannot take the place of run the queryset itself: LIKE's wildcards, a stand-in's value
    built.clear()
    assert read_prepared(("test", "read_prepared"), build, 0, "%") == list(build(0, "%"))
    assert read_prepared(("test", "read_prepared"), build, services._INT_MARKERS[0], "b") == []
    assert read_prepared(("test", "read_prepared"), build, 2**63 + 1, "b") == []  # a value a field would encode
    assert built and not any(call[0] in services._INT_MARKERS and call[1].startswith("portal") for call in built)


def test_a_query_validated_once_serves_every_draw_and_a_bad_draw_is_still_a_400(owner_client, jobs, monkeypatch):
    """DataTables asks the same page with a new draw each time: validated once per process, answered the same."""
    from jobstats import api

    validated: list = []
    real = api.JobQuerySerializer

    def counting(*args, **kwargs):
        validated.append(kwargs.get("data"))
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "JobQuerySerializer", counting)
    shape = {"start": 0, "length": 2, "columns[0][data]": "time_start", "order[0][column]": "0", "search[value]": "x9q"}
    first = datatables(owner_client, draw=1, **shape)[1]
    second = datatables(owner_client, draw=2, **shape)[1]
    assert len(validated) == 1 and second == {**first, "draw": 2}
    for bad in ("x", "-1", "3.5", " "):
        response, body = datatables(owner_client, draw=bad, **shape)
        assert response.status_code == 400 and list(body) == ["draw"], bad
    for three in ("3.0", "٣", "+3"):  # as DRF's IntegerField reads them
        assert datatables(owner_client, draw=three, **shape)[1]["draw"] == 3
    response, body = datatables(owner_client, draw=4, **{**shape, "length": 0})
    assert response.status_code == 400 and "length" in body  # another shape: validated, never kept
    assert datatables(owner_client, draw=5, **{**shape, "length": 0})[0].status_code == 400
