"""Every route of the URL conf, requested as each persona, gets the status its rule says.

A route without a rule fails here (and in `manage.py check`). A route whose URL needs a
parameter this test cannot fill fails too: add a sample value to SAMPLES.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from factories import sample_receipt

from jobstats.models import JobScript
from slurm import visibility
from userportal import access
from userportal.access import Rule, is_api_view, iter_routes

pytestmark = pytest.mark.django_db(databases=["default", "slurm", "robinhood"])

PERSONAS = ("anonymous", "owner", "member", "outsider", "staff")

# Which personas each rule lets through, given URLs about the owner and the owner's account.
ALLOWED = {
    Rule.PUBLIC: set(PERSONAS),
    Rule.LOGIN: {"owner", "member", "outsider", "staff"},
    Rule.OWNER: {"owner", "staff"},
    Rule.ACCOUNT_MEMBER: {"owner", "member", "staff"},
    Rule.PROJECT_MEMBER: {"owner", "member", "staff"},  # tests/cloudstats/projects.yaml: def-owner
    Rule.STAFF: {"staff"},
    Rule.STAFF_OR_PERMISSION: {"staff"},  # no other persona holds the pattern's permission
    Rule.SERVICE: {"staff"},
    Rule.ADMIN: {"staff"},
    Rule.METRICS: {
        "staff"
    },  # and Prometheus with PORTAL_METRICS_TOKEN or from PORTAL_METRICS_ALLOW (tests/test_metrics.py)
}

CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
REGEX_GROUP = re.compile(r"\(\?P<(?P<name>[^>]+)>[^)]*\)")


def samples(personas) -> dict[str, str]:
    # The job-script API's reads need staff *and* a model permission, and its detail route an
    # uploaded script: give the staff persona the permission and the owner's job a script.
    personas.staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="jobstats", codename="view_jobscript")
    )
    JobScript.objects.get_or_create(
        cluster=personas.slurm.cluster,
        id_job=personas.owner_job.id_job,
        time_submit=personas.owner_job.time_submit,
        defaults={"submit_script": "#!/bin/bash\nsleep 1\n"},
    )

    return {
        "receipt_id": str(sample_receipt("owner").pk),  # a receipt of the owner, for billing's receipt pages
        "id_job": str(personas.owner_job.id_job),
        "username": "owner",
        "user": "owner",
        "account": "def-owner",
        "job_id": str(personas.owner_job.id_job),
        "jobid": str(personas.owner_job.id_job),
        "job_ids": str(personas.owner_job.id_job),
        "graph": "cpu",
        "chart": "wait",  # scheduler: one of its charts
        "node": "node01",  # nodes: a node page (no scontrol in unit tests: the page says so)
        # priorities: the staff page of one request (the owner's)
        "priority_id": str(_sample_priority(personas)),
        # jobstats: a graph whose exporter this site lacks answers "no data" without Prometheus
        # (none runs here; graphs that ask it answer 503, tested in tests/jobstats/).
        "name": "lustre_ost",
        # pages: a public graph this site lacks the series of answers "no data" without Prometheus
        "figure": "fs_metadata",
        "job_db_inx": str(personas.owner_job.job_db_inx),
        # extensions: the staff page of a time extension request of the owner's job
        "extension_id": str(_sample_extension(personas)),
        # notes: a staff note on the owner
        "note_id": str(_sample_note(personas)),
        # outreach: a report sent to the owner (staff only)
        "report_id": str(_sample_report()),
        # jobqueue: a queued job of the owner's (only its owner and staff see it)
        "queue_job_id": _owner_queue_job(personas),
        # Django admin's own patterns
        "app_label": "auth",
        "object_id": "1",
        "id": "1",
        "content_type_id": "1",
        "url": "unknown/",
        # cloudstats: the owner's cloud project, an instance, and a graph the default exporter
        # (Debian's) does not report: "no data" without asking Prometheus (none runs here)
        "project": "def-owner",
        "uuid": "5b2a6f2e-1c1d-4a8e-9c55-0f6f3b1e0a01",
        "metric": "memory_used",
    }


# LOGIN routes naming one object that the view scopes itself (slurm.visibility), like
# /api/jobs/<job_db_inx>/: the sample is the owner's job, which another user's lookup does not find.
OBJECT_SCOPED = {"api/jobs/<int:job_db_inx>/"}
# LOGIN routes naming an object only its owner (and staff) may see: member and outsider get 404.
OWNER_SCOPED = {
    "jobqueue/api/status/<str:queue_job_id>",
    "jobqueue/api/results/<str:queue_job_id>",
}

# LOGIN routes naming an object of the caller's own (staff name another user in the query string,
# as the jobstats command's --user does): everyone but the owner gets 404 for the owner's sample.
CALLER_SCOPED = {"api/jobstats/<jobids:job_id>/"}


def _owner_queue_job(personas) -> str:
    from jobqueue.models import Job

    job, _created = Job.objects.get_or_create(
        user=personas.owner, competition_id="c", defaults={"project_id": "p", "expected_time": 1, "code": "print(1)"}
    )
    return job.job_id


def _sample_report() -> int:
    from django.utils import timezone

    from outreach.models import SentReport

    now = timezone.now()
    report = SentReport.objects.create(
        username="owner", email="owner@example.org", cluster="testcluster", sent=now,
        window_start=now, window_end=now, subject="s", body="b",
    )  # fmt: skip
    return report.pk


def _sample_note(personas) -> int:
    from notes.models import Note

    note = Note.objects.create(
        cluster=personas.slurm.cluster,
        username="owner",
        title="t",
        text="x",
        author=personas.staff,
        author_name="staffer",
    )
    return note.pk


def _sample_extension(personas) -> int:
    from extensions.models import ExtensionRequest

    extension = ExtensionRequest.objects.create(
        requester=personas.owner, cluster=personas.slurm.cluster, job_id=str(personas.owner_job.id_job),
        account="def-owner", partition="cpu", hours=1, reason="test",
    )  # fmt: skip
    return extension.pk


def _sample_priority(personas) -> int:
    from datetime import timedelta

    from django.utils import timezone

    from priorities.models import PriorityRequest

    priority = PriorityRequest.objects.create(
        requester=personas.owner, cluster=personas.slurm.cluster, account="def-owner", gpu_type="a100",
        gpu_count=1, start=timezone.now() + timedelta(days=1), duration_days=2, justification="test", ticket="1",
    )  # fmt: skip
    return priority.pk


# Query strings some views need to answer at all (Django admin's autocomplete reads them unchecked).
QUERIES = {
    "admin/autocomplete/": "?app_label=auth&model_name=user&field_name=groups&term=a",
    "secure/search/": "?q=owner",  # the staff search answers 400 without a query
    "secure/search/results.json": "?q=owner",
}


def concrete_url(route: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in values:
            pytest.fail(f"route {route!r}: no sample value for URL parameter {name!r}; add one to SAMPLES")
        return values[name]

    url = REGEX_GROUP.sub(fill, route)  # regex routes (admin) first: their groups look like converters
    url = CONVERTER.sub(fill, url).replace("^", "").replace("$", "").replace("\\", "")
    return "/" + url + QUERIES.get(route, "")


def all_routes() -> list[tuple[str, Rule | None, bool]]:
    """(route, rule, is an API view) for every pattern."""
    return [(route, rule, is_api_view(pattern.callback)) for route, pattern, rule in iter_routes()]


def test_every_route_has_an_access_rule():
    missing = [route for route, rule, _api in all_routes() if rule is None]
    assert missing == []


def client_for(persona: str, personas) -> Client:
    client = Client()
    if persona != "anonymous":
        client.force_login(getattr(personas, persona))
    return client


def is_login_redirect(response) -> bool:
    location = response.headers.get("Location", "")
    return response.status_code == 302 and ("/accounts/login/" in location or "/admin/login/" in location)


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_route_answers_each_persona_as_its_rule_says(personas, persona):
    client = client_for(persona, personas)
    values = samples(personas)
    problems = []
    checked = 0
    for route, rule, api in all_routes():
        assert rule is not None, route
        url = concrete_url(route, values)
        response = client.get(url)
        checked += 1
        status = response.status_code
        if rule is Rule.ADMIN and persona == "staff":
            ok = status < 500 and not is_login_redirect(response)  # 403 where a model permission is missing
        elif route in OWNER_SCOPED and persona in ("member", "outsider"):
            ok = status == 404  # the rule lets them in; the object (the owner's) is not theirs to see
        elif route in CALLER_SCOPED and persona in ("member", "outsider", "staff"):
            ok = status == 404  # the caller's own jobs: the owner's is not the caller's
        elif route in OBJECT_SCOPED and persona == "outsider":
            ok = status == 404  # the rule lets them in; the object (the owner's) is not theirs to see
        elif persona in ALLOWED[rule]:
            ok = status < 500 and status not in (401, 403, 404) and not is_login_redirect(response)
        elif rule is Rule.ADMIN:
            ok = is_login_redirect(response) if persona == "anonymous" else status == 403
        elif rule is Rule.METRICS:
            ok = status == 403  # a scraper without the token or the address: no sign-in page
        elif persona == "anonymous":
            ok = is_login_redirect(response) or (status in (401, 403) and api)
        else:
            ok = status == 403
        if not ok:
            problems.append(f"{persona} GET {url} ({rule.name}) -> {status} {response.headers.get('Location', '')}")
    assert checked > 10
    assert not problems, "\n" + "\n".join(problems)


def test_route_walk_covers_the_enabled_modules():
    routes = [route for route, _rule, _api in all_routes()]
    for module in settings.PORTAL_MODULES:
        assert any(module in route for route in routes), f"no route of module {module}"


def test_the_slurm_app_registers_account_membership_at_start_up():
    assert access._membership == [visibility.is_account_member]


def test_account_member_rule_without_a_registered_check_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(access, "_membership", [])
    with pytest.raises(ImproperlyConfigured, match="slurm app must be in INSTALLED_APPS"):
        access.is_account_member("owner", "def-owner", "testcluster")


def test_account_member_rule_asks_the_registered_check(rf, monkeypatch):
    asked = []
    monkeypatch.setattr(access, "_membership", [])
    access.register_membership(lambda user, account, cluster: asked.append((user, account, cluster)) or True)
    request = rf.get("/")
    request.session = {}
    request.user = User(username="owner")
    assert access.allowed(Rule.ACCOUNT_MEMBER, request, {"account": "def-owner"})
    assert asked == [("owner", "def-owner", "testcluster")]


def test_staff_or_permission_lets_in_holders_of_the_patterns_permission(client, personas):
    """billing's staff pages name billing.view_receipt: a user holding it reads them, staff or not."""
    url = "/billing/staff/usage/"
    client.force_login(personas.outsider)
    assert client.get(url).status_code == 403
    personas.outsider.user_permissions.add(
        Permission.objects.get(content_type__app_label="billing", codename="view_receipt")
    )
    outsider = User.objects.get(pk=personas.outsider.pk)  # a fresh permission cache
    client.force_login(outsider)
    assert client.get(url).status_code == 200
    assert client.get("/secure/top/").status_code == 403  # Rule.STAFF: still staff only
    assert access.permission_table()["billing/staff/usage/"] == "billing.view_receipt"


def test_guard_needs_a_permission_exactly_for_staff_or_permission():
    from django.urls import path

    with pytest.raises(TypeError):
        access.guard(Rule.STAFF_OR_PERMISSION, path("x/", lambda request: None))
    with pytest.raises(TypeError):
        access.guard(Rule.STAFF, path("x/", lambda request: None), permission="billing.view_receipt")
