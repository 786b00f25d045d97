"""The jobstats command's page: a user creates, replaces and revokes their own read-only personal token."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.exceptions import PermissionDenied
from rest_framework.test import APIRequestFactory

from userportal.models import ApiToken, AuditEntry
from userportal.tokens import PERSONAL_NAME, ApiTokenAuthentication, hash_key

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

PAGE = "/secure/jobstats-command/"
STORE = re.compile(r"printf &#x27;%s\\n&#x27; &#x27;([A-Za-z0-9_-]{44})&#x27; &gt; ~/.config/userportal/token\)")


@pytest.fixture
def owner(client, personas):
    client.force_login(personas.owner)
    return client


def create(client) -> str:
    response = client.post(PAGE, {"action": "create"})
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    html = response.content.decode()
    match = STORE.search(html)
    assert match, html
    assert "umask 077 &amp;&amp; rm -f ~/.config/userportal/token" in html
    return match.group(1)


def api(key: str, job_id: int) -> int:
    url = reverse("jobstats:api-jobstats", kwargs={"job_id": str(job_id)})
    return Client().get(url, HTTP_AUTHORIZATION=f"Token {key}").status_code


def test_the_page_explains_the_command_and_has_no_token_at_first(owner):
    html = owner.get(PAGE).content.decode()
    assert reverse("jobstats:command") == PAGE
    assert "jobstats &lt;jobid&gt;" in html
    assert "You have no personal token." in html
    assert "Revoke my token" not in html


def test_a_created_token_is_shown_once_stored_hashed_and_reads_the_users_jobs(owner, personas, jobs):
    key = create(owner)
    token = ApiToken.objects.get(user=personas.owner, name=PERSONAL_NAME)
    assert token.key_hash == hash_key(key)
    assert token.expires is not None
    assert api(key, jobs.gpu.id_job) == 200
    page = owner.get(PAGE).content.decode()
    assert key not in page
    assert f"{token.prefix}…" in page
    assert AuditEntry.objects.filter(action="jobstats.personal_token_create", target="user:owner").exists()


def test_replacing_a_token_stops_the_old_one(owner, jobs):
    first = create(owner)
    second = create(owner)
    assert api(first, jobs.gpu.id_job) == 401
    assert api(second, jobs.gpu.id_job) == 200


def test_revoking_stops_it_at_once(owner, personas, jobs):
    key = create(owner)
    assert api(key, jobs.gpu.id_job) == 200  # now cached
    response = owner.post(PAGE, {"action": "revoke"})
    assert response.status_code == 302
    assert api(key, jobs.gpu.id_job) == 401
    assert "You have no personal token." in owner.get(PAGE).content.decode()
    assert AuditEntry.objects.filter(action="jobstats.personal_token_revoke").exists()


def test_a_personal_token_only_reads(personas):
    from userportal.tokens import issue_personal_token

    _token, key = issue_personal_token(personas.owner)
    factory = APIRequestFactory()
    auth = ApiTokenAuthentication()
    own = reverse("jobstats:api-jobstats", kwargs={"job_id": "1"})
    assert auth.authenticate(factory.get(own, HTTP_AUTHORIZATION=f"Token {key}"))[0] == personas.owner
    with pytest.raises(PermissionDenied):
        auth.authenticate(factory.post("/api/jobscripts/", {}, HTTP_AUTHORIZATION=f"Token {key}"))
    with pytest.raises(PermissionDenied):
        auth.authenticate(factory.post(own, {}, HTTP_AUTHORIZATION=f"Token {key}"))


def test_a_staff_members_personal_token_reads_only_the_jobstats_endpoint(personas, jobs):
    """Kept in a file on a shared login node: a staff member's key must not open the staff APIs."""
    from userportal.tokens import issue_personal_token, issue_token

    _token, key = issue_personal_token(personas.staff)
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"}
    for path in ("/api/notes/", "/api/jobs/?user=owner", "/api/jobs/", reverse("jobstats:api-jobs")):
        response = Client().get(path, **headers)
        assert response.status_code == 403, path
        assert "jobstats command" in response.json()["detail"]
    assert api(key, 999999) == 404  # the jobstats endpoint itself: answered (no such job of staffer's)
    # a regular (service) API token of staff still reads them
    _regular, service_key = issue_token(personas.staff, name="ops")
    assert Client().get("/api/notes/", HTTP_AUTHORIZATION=f"Token {service_key}").status_code == 200


def test_a_personal_token_refuses_another_users_jobs_even_for_staff(client, personas, jobs):
    from userportal.tokens import issue_personal_token

    url = reverse("jobstats:api-jobstats", kwargs={"job_id": str(jobs.gpu.id_job)})
    _token, key = issue_personal_token(personas.staff)
    response = Client().get(url, {"user": "owner"}, HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 403
    assert "your own jobs" in response.json()["detail"]
    _token, own_key = issue_personal_token(personas.owner)
    assert Client().get(url, {"user": "owner"}, HTTP_AUTHORIZATION=f"Token {own_key}").status_code == 200
    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {own_key}").status_code == 200
    # staff's session still reads another user's job
    client.force_login(personas.staff)
    assert client.get(url, {"user": "owner"}).status_code == 200


def test_it_acts_on_the_signed_in_user_only(client, personas):
    client.force_login(personas.staff)
    create(client)
    assert ApiToken.objects.filter(user=personas.staff).count() == 1
    assert not ApiToken.objects.filter(user=personas.owner).exists()


def test_an_unknown_action_is_a_400_and_anonymous_signs_in(owner):
    assert owner.post(PAGE, {"action": "steal"}).status_code == 400
    response = Client().get(PAGE)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_users_job_list_links_to_it_for_the_user_only(client, personas, jobs):
    client.force_login(personas.owner)
    assert PAGE in client.get(reverse("jobstats:user", kwargs={"username": "owner"})).content.decode()
    client.force_login(personas.staff)
    assert PAGE not in client.get(reverse("jobstats:user", kwargs={"username": "owner"})).content.decode()
