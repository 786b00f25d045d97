"""search: one box over portal users, the directory, Slurm users and accounts, job ids, notes and tickets;
ranked, capped, each source failing on its own, and rendered escaped."""

from __future__ import annotations

from datetime import timedelta

import ldap
import pytest
from django.urls import reverse
from django.utils import timezone

from notes.models import Note
from priorities.models import PriorityRequest
from search import services
from userportal import search as registry
from userportal.search import SearchProvider, rank

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def staff_client(client, personas):
    client.force_login(personas.staff)
    return client


def results(client, query: str) -> dict:
    response = client.get(reverse("search:results"), {"q": query})
    assert response.status_code == 200, response.content
    return response.json()


def test_users_are_refused(client, personas):
    client.force_login(personas.owner)
    assert client.get(reverse("search:index"), {"q": "owner"}).status_code == 403
    assert client.get(reverse("search:results"), {"q": "owner"}).status_code == 403


def test_rank_orders_exact_prefix_and_anywhere():
    assert rank("owner", "owner") == 100
    assert rank("owner2", "OWN") == 50
    assert rank("the-owner", "owner") == 10
    assert rank("x", "owner") == 0


def test_a_user_known_to_the_portal_and_slurm_is_one_result_linking_to_their_summary(staff_client, personas):
    body = results(staff_client, "owner")
    users = [r for r in body["results"] if r["kind"] == "user"]
    assert users[0]["label"] == "owner"
    assert users[0]["score"] == 100
    assert users[0]["url"] == reverse("usersummary:user", kwargs={"username": "owner"})
    assert "portal, Slurm" in users[0]["detail"]
    assert [u["label"] for u in users].count("owner") == 1


def test_accounts_link_to_accountstats(staff_client, personas):
    body = results(staff_client, "def-oth")
    [account] = [r for r in body["results"] if r["kind"] == "account"]
    assert account["label"] == "def-other"
    assert account["url"] == reverse("accountstats:account", kwargs={"account": "def-other"})


@pytest.mark.parametrize("form", ["plain", "array", "het"])
def test_job_ids_in_their_three_forms_link_to_the_job_page(staff_client, personas, form):
    slurm = personas.slurm
    job = {
        "plain": personas.owner_job,
        "array": slurm.job("owner", "def-owner", id_array_job=700, id_array_task=3),
        "het": slurm.job("member", "def-owner", het_job_id=800, het_job_offset=1),
    }[form]
    query = {"plain": str(job.id_job), "array": "700_3", "het": "800+1"}[form]
    [hit] = [r for r in results(staff_client, query)["results"] if r["kind"] == "job"]
    assert hit["label"] == query
    owner = "member" if form == "het" else "owner"
    assert hit["url"] == reverse("jobstats:job", kwargs={"username": owner, "job_id": job.id_job})
    assert hit["score"] == 100


def test_notes_and_tickets_come_from_their_apps(staff_client, personas):
    Note.objects.create(
        cluster="testcluster",
        username="owner",
        title="Disk quota raised",
        text="x",
        ticket="RT-77",
        author_name="staffer",
    )
    PriorityRequest.objects.create(
        requester=personas.owner, cluster="testcluster", account="def-owner", gpu_type="a100", gpu_count=1,
        start=timezone.now() + timedelta(days=1), duration_days=2, justification="j", ticket="RT-77",
    )  # fmt: skip
    body = results(staff_client, "RT-77")
    kinds = sorted((r["kind"], r["label"]) for r in body["results"])
    assert ("note", "Disk quota raised") in kinds
    assert kinds.count(("ticket", "RT-77")) == 2  # the notes' ticket and the priority request's
    assert body["unavailable"] == []


def test_results_are_capped_and_ranked(staff_client, personas, monkeypatch):
    monkeypatch.setattr(services, "MAX_RESULTS", 3)
    for i in range(6):
        personas.slurm.user(f"owner{i}", ["def-owner"])
    body = results(staff_client, "owner")
    assert len(body["results"]) == 3
    assert body["truncated"] is True
    assert body["results"][0]["label"] == "owner"


def test_a_failing_source_is_named_and_the_others_answer(staff_client, personas):
    def broken(query, cluster, limit):
        raise RuntimeError("bug")

    registry.register_search_provider(SearchProvider("jobqueue", "the broken source", broken))
    try:
        body = results(staff_client, "owner")
    finally:
        registry.unregister_search_provider("jobqueue")
    assert body["unavailable"] == ["the broken source"]
    assert any(r["label"] == "owner" for r in body["results"])


def test_providers_of_modules_not_enabled_are_not_asked(staff_client, personas, settings):
    Note.objects.create(cluster="testcluster", username="owner", title="hidden note", text="x", author_name="s")
    settings.PORTAL_MODULES = [m for m in settings.PORTAL_MODULES if m != "notes"]
    assert not [r for r in results(staff_client, "hidden")["results"] if r["kind"] == "note"]


@pytest.mark.parametrize(("query", "status"), [("", 400), ("a", 400), ("x" * 101, 400), ("7", 200)])
def test_query_bounds(staff_client, personas, query, status):
    assert staff_client.get(reverse("search:results"), {"q": query}).status_code == status


def test_the_page_escapes_what_it_found(staff_client, personas):
    personas.owner.first_name = '<img src=x onerror="alert(1)">'
    personas.owner.save()
    response = staff_client.get(reverse("search:index"), {"q": "owner"})
    html = response.content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "innerHTML" not in html


def test_the_navigation_has_a_search_box_for_staff_only(client, personas):
    client.force_login(personas.staff)
    assert 'id="nav-search"' in client.get(reverse("home")).content.decode()
    client.force_login(personas.owner)
    assert 'id="nav-search"' not in client.get(reverse("home")).content.decode()


# --- the directory ------------------------------------------------------------------------------
class FakeConnection:
    def __init__(self, entries, fail=None):
        self.entries, self.fail, self.searches = entries, fail, []

    def set_option(self, option, value):
        pass

    def simple_bind_s(self, who, cred):
        if self.fail:
            raise self.fail

    def search_ext_s(self, base, scope, filterstr, attrlist, *, timeout, sizelimit):
        self.searches.append({"base": base, "filter": filterstr, "sizelimit": sizelimit})
        return self.entries

    def unbind_s(self):
        pass


@pytest.fixture
def directory(settings, monkeypatch):
    from django_auth_ldap.config import LDAPSearch

    settings.LDAP_ENABLED = True
    settings.AUTH_LDAP_SERVER_URI = "ldap://ldap.test"
    settings.AUTH_LDAP_BIND_DN, settings.AUTH_LDAP_BIND_PASSWORD, settings.AUTH_LDAP_START_TLS = "cn=r", "pw", False
    settings.AUTH_LDAP_USER_SEARCH = LDAPSearch("ou=people,dc=test", ldap.SCOPE_SUBTREE, "(uid=%(user)s)")
    conn = FakeConnection(
        [
            (
                "uid=dana,ou=people,dc=test",
                {"uid": [b"dana"], "cn": [b"Dana <b>Scully</b>"], "mail": [b"dana@example.org"]},
            )
        ]
    )
    monkeypatch.setattr(ldap, "initialize", lambda uri: conn)
    return conn


def test_directory_users_are_found_with_an_escaped_filter(staff_client, personas, directory):
    body = results(staff_client, "da*)(uid=")
    assert (
        directory.searches[0]["filter"]
        == r"(&(uid=*)(|(uid=*da\2a\29\28uid=*)(cn=*da\2a\29\28uid=*)(mail=*da\2a\29\28uid=*)))"
    )
    body = results(staff_client, "dana")
    [dana] = [r for r in body["results"] if r["label"] == "dana"]
    assert dana["url"] == reverse("usersummary:user", kwargs={"username": "dana"})
    assert "directory" in dana["detail"]
    html = staff_client.get(reverse("search:index"), {"q": "dana"}).content.decode()
    assert "Dana &lt;b&gt;Scully&lt;/b&gt;" in html


def test_a_dead_directory_is_named_remembered_and_the_rest_answers(staff_client, personas, directory, monkeypatch):
    directory.fail = ldap.SERVER_DOWN({"desc": "Can't contact LDAP server"})
    body = results(staff_client, "owner")
    assert body["unavailable"] == ["the LDAP directory"]
    assert any(r["label"] == "owner" for r in body["results"])
    monkeypatch.setattr(ldap, "initialize", lambda uri: pytest.fail("asked the dead directory again"))
    assert results(staff_client, "owner")["unavailable"] == ["the LDAP directory"]


@pytest.mark.parametrize("n", [1, 5])
def test_a_search_costs_a_fixed_number_of_queries(staff_client, personas, n, django_assert_max_num_queries):
    for i in range(n):
        personas.slurm.user(f"owner{i}", [f"def-owner{i}"])
        Note.objects.create(
            cluster="testcluster", username="owner", title=f"owner note {i}", text="x", ticket=f"T{i}", author_name="s"
        )
    with django_assert_max_num_queries(10), django_assert_max_num_queries(4, using="slurm"):
        results(staff_client, "owner")
