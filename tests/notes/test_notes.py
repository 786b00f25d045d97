"""notes: staff notes on users, accounts and jobs; full validation, soft delete, history, a read API,
shown on the user summary and marked on other pages; redirects only to local addresses."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notes import services
from notes.models import Note
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def post_note(client, **fields):
    data = {
        "username": "",
        "account": "",
        "job": "",
        "title": "Slow jobs",
        "text": "Asked to use fewer cores.",
        "ticket": "T-42",
    }
    data.update(fields)
    return client.post(reverse("notes:new"), data)


@pytest.fixture
def staff_client(client, personas):
    client.force_login(personas.staff)
    return client


def test_users_are_refused_every_notes_page_and_the_api(client, personas):
    client.force_login(personas.owner)
    for url in (reverse("notes:index"), reverse("notes:new"), reverse("notes:api-list")):
        assert client.get(url).status_code == 403


def test_staff_create_a_note_on_a_user_with_history_and_audit(staff_client, personas):
    response = post_note(staff_client, username="owner")
    note = Note.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("notes:detail", kwargs={"note_id": note.pk})
    assert (note.username, note.author_name, note.ticket) == ("owner", "staffer", "T-42")
    assert note.history.count() == 1
    assert note.history.get().history_user == personas.staff
    assert AuditEntry.objects.filter(action="notes.created", target=f"note:{note.pk}").exists()


def test_a_note_must_name_something(staff_client, personas):
    response = post_note(staff_client)
    assert response.status_code == 200
    assert "Name a user, an account or a job" in response.content.decode()
    assert not Note.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"username": "nobody"}, "username", "No portal or Slurm user is called nobody."),
        ({"account": "def-none"}, "account", "No Slurm account is called def-none."),
        ({"job": "12x"}, "job", "A job is written 1234, 1234_7"),
        ({"job": "999999"}, "job", "has no job 999999"),
        ({"title": ""}, "title", "This field is required."),
        ({"username": "owner", "text": "x" * 20_001}, "text", "at most 20000 characters"),
    ],
)
def test_each_field_is_checked(staff_client, personas, fields, field, message):
    response = post_note(staff_client, **fields)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Note.objects.exists()


def test_a_job_must_belong_to_the_user_and_the_account_named(staff_client, personas):
    job = personas.owner_job
    response = post_note(staff_client, username="member", job=str(job.id_job))
    assert response.context["form"].errors["job"] == [f"Job {job.id_job} is owner's, not member's."]
    response = post_note(staff_client, account="def-other", job=str(job.id_job))
    assert response.context["form"].errors["job"] == [f"Job {job.id_job} ran in account def-owner, not def-other."]
    post_note(staff_client, username="owner", account="def-owner", job=str(job.id_job))
    note = Note.objects.get()
    assert (note.job_ref, note.job_id, note.job_user) == (str(job.id_job), job.id_job, "owner")


def test_array_tasks_and_het_components_are_found(staff_client, personas):
    task = personas.slurm.job("owner", "def-owner", id_array_job=500, id_array_task=4)
    component = personas.slurm.job("member", "def-owner", het_job_id=600, het_job_offset=1)
    post_note(staff_client, job="500_4")
    post_note(staff_client, job=" 600+1 ")
    assert sorted(Note.objects.values_list("job_ref", "job_id", "job_user")) == sorted(
        [("500_4", task.id_job, "owner"), ("600+1", component.id_job, "member")]
    )


def test_an_update_is_validated_like_a_creation(staff_client, personas):
    post_note(staff_client, username="owner")
    note = Note.objects.get()
    url = reverse("notes:edit", kwargs={"note_id": note.pk})
    response = staff_client.post(url, {"username": "nobody", "title": "t", "text": "x"})
    assert response.status_code == 200
    note.refresh_from_db()
    assert note.username == "owner"
    response = staff_client.post(url, {"account": "def-owner", "title": "Account note", "text": "y", "ticket": ""})
    assert response.status_code == 302
    note.refresh_from_db()
    assert (note.username, note.account, note.title, note.author_name) == ("", "def-owner", "Account note", "staffer")
    assert note.history.count() == 2


def test_soft_delete_hides_keeps_and_restores(staff_client, personas):
    post_note(staff_client, username="owner", title="Gone soon")
    note = Note.objects.get()
    staff_client.post(reverse("notes:delete", kwargs={"note_id": note.pk}))
    note.refresh_from_db()
    assert note.deleted and note.deleted_by == "staffer"
    assert "Gone soon" not in staff_client.get(reverse("notes:index")).content.decode()
    assert "Gone soon" in staff_client.get(reverse("notes:index") + "?deleted=1").content.decode()
    assert staff_client.get(reverse("notes:edit", kwargs={"note_id": note.pk})).status_code == 404
    staff_client.post(reverse("notes:delete", kwargs={"note_id": note.pk}), {"restore": "1"})
    note.refresh_from_db()
    assert not note.deleted
    changes = [v.change for v in services.history_of(note)]
    assert changes == ["restored", "deleted", "created"]
    assert "restored" in staff_client.get(reverse("notes:detail", kwargs={"note_id": note.pk})).content.decode()


def test_deleting_needs_a_post(staff_client, personas):
    post_note(staff_client, username="owner")
    note = Note.objects.get()
    assert staff_client.get(reverse("notes:delete", kwargs={"note_id": note.pk})).status_code == 405


@pytest.mark.parametrize(
    ("next_url", "local"),
    [
        ("/secure/usersummary/owner/", True),
        ("https://evil.example.org/", False),
        ("//evil.example.org/x", False),
        ("javascript:alert(1)", False),
    ],
)
def test_after_saving_only_a_local_next_is_followed_never_the_referer(staff_client, personas, next_url, local):
    response = staff_client.post(
        reverse("notes:new"),
        {"username": "owner", "title": "t", "text": "x", "next": next_url},
        HTTP_REFERER="https://evil.example.org/referer",
    )
    note = Note.objects.get()
    assert response["Location"] == (next_url if local else reverse("notes:detail", kwargs={"note_id": note.pk}))


def test_the_new_form_keeps_a_local_next_and_prefills_the_subject(staff_client, personas):
    html = staff_client.get(reverse("notes:new") + "?username=owner&next=/secure/usersummary/owner/").content.decode()
    assert 'name="next" value="/secure/usersummary/owner/"' in html
    assert 'name="username" value="owner"' in html
    response = staff_client.get(reverse("notes:new") + "?next=https://evil.example.org/")
    assert response.context["next"] == ""
    assert 'name="next" value="https://evil' not in response.content.decode()


def test_the_list_filters_by_user_including_their_jobs(staff_client, personas):
    post_note(staff_client, username="owner", title="On owner")
    post_note(staff_client, job=str(personas.owner_job.id_job), title="On owner's job")
    post_note(staff_client, account="def-other", title="On def-other")
    html = staff_client.get(reverse("notes:index") + "?username=owner").content.decode()
    assert "On owner" in html and "On owner&#x27;s job" in html and "On def-other" not in html


# --- API ----------------------------------------------------------------------------------------
def test_the_api_lists_filters_and_shows_the_history(staff_client, personas):
    post_note(staff_client, username="owner", title="A")
    post_note(staff_client, account="def-other", title="B")
    body = staff_client.get(reverse("notes:api-list") + "?account=def-other").json()
    assert body["count"] == 1
    assert body["results"][0]["title"] == "B"
    assert body["results"][0]["author"] == "staffer"
    note = Note.objects.get(title="A")
    detail = staff_client.get(reverse("notes:api-detail", kwargs={"note_id": note.pk})).json()
    assert detail["username"] == "owner"
    assert detail["history"][0]["change"] == "+"
    assert detail["history"][0]["by"] == "staffer"


def test_the_api_refuses_users_and_anonymous(client, personas):
    assert client.get(reverse("notes:api-list")).status_code in (401, 403)
    client.force_login(personas.member)
    assert client.get(reverse("notes:api-list")).status_code == 403


@pytest.mark.parametrize("n", [1, 5])
def test_the_list_costs_a_fixed_number_of_queries(staff_client, personas, n, django_assert_max_num_queries):
    for i in range(n):
        post_note(staff_client, username="owner", title=f"note {i}")
    with django_assert_max_num_queries(8):
        assert staff_client.get(reverse("notes:index")).status_code == 200
    with django_assert_max_num_queries(8):
        assert staff_client.get(reverse("notes:api-list")).status_code == 200


# --- on other pages -----------------------------------------------------------------------------
def test_staff_see_the_notes_on_the_user_summary_and_the_user_does_not(client, personas):
    client.force_login(personas.staff)
    post_note(client, username="owner", title="Owner note")
    post_note(client, account="def-owner", title="Account note")
    response = client.get(reverse("usersummary:user", kwargs={"username": "owner"}))
    item = next(i for i in response.context["sections"] if i.section.key == "notes")
    assert "Owner note" in item.html and "Account note" in item.html
    assert "next=%2Fsecure%2Fusersummary%2Fowner%2F" in item.html
    client.force_login(personas.owner)
    response = client.get(reverse("usersummary:user", kwargs={"username": "owner"}))
    assert "notes" not in [i.section.key for i in response.context["sections"]]
    assert "Owner note" not in response.content.decode()


def test_staff_see_a_mark_on_the_jobstats_pages_and_users_do_not(client, personas):
    client.force_login(personas.staff)
    job = personas.owner_job
    post_note(client, job=str(job.id_job), title="Job note")
    user_page = reverse("jobstats:user", kwargs={"username": "owner"})
    job_page = reverse("jobstats:job", kwargs={"username": "owner", "job_id": job.id_job})
    assert "1 staff note" in client.get(user_page).content.decode()
    assert "1 staff note" in client.get(job_page).content.decode()
    client.force_login(personas.owner)
    assert "staff note" not in client.get(user_page).content.decode()
    assert "staff note" not in client.get(job_page).content.decode()


def test_staff_see_a_mark_on_the_account_page_and_members_do_not(client, personas):
    client.force_login(personas.staff)
    post_note(client, account="def-owner", title="Account note")
    page = reverse("accountstats:account", kwargs={"account": "def-owner"})
    html = client.get(page).content.decode()
    assert "1 staff note" in html
    assert reverse("notes:index") + "?account=def-owner" in html
    client.force_login(personas.owner)
    assert "staff note" not in client.get(page).content.decode()


def test_staff_see_a_mark_in_the_top_tables(client, personas, prom):
    prom.samples = {"cpu_alloc": [({"user": "owner", "account": "def-owner"}, 8.0)]}
    client.force_login(personas.staff)
    post_note(client, username="owner", title="Top note")
    html = client.get(reverse("top:compute") + "?window=now").content.decode()
    assert "1 staff note" in html
    assert reverse("notes:index") + "?username=owner" in html


def test_without_the_notes_module_no_mark_is_asked(client, personas, settings):
    client.force_login(personas.staff)
    post_note(client, username="owner")
    settings.PORTAL_MODULES = [m for m in settings.PORTAL_MODULES if m != "notes"]
    from userportal.annotations import annotations_for

    assert annotations_for("user", ["owner"], cluster="testcluster") == {}


# --- staff powers -------------------------------------------------------------------------------
def test_plain_staff_read_notes_but_writing_is_a_power(client, personas):
    from factories import StaffFactory

    note = Note.objects.create(cluster="testcluster", username="owner", title="Read me", text="x", author_name="s")
    plain = StaffFactory(username="plainstaff")
    client.force_login(plain)
    assert "Read me" in client.get(reverse("notes:index")).content.decode()
    detail = client.get(reverse("notes:detail", kwargs={"note_id": note.pk})).content.decode()
    assert "Read me" in detail and reverse("notes:edit", kwargs={"note_id": note.pk}) not in detail
    assert client.get(reverse("notes:new")).status_code == 403
    assert post_note(client, username="owner").status_code == 403
    assert (
        client.post(reverse("notes:edit", kwargs={"note_id": note.pk}), {"title": "x", "text": "y"}).status_code == 403
    )
    assert client.post(reverse("notes:delete", kwargs={"note_id": note.pk})).status_code == 403
    assert Note.objects.count() == 1 and not Note.objects.get().deleted
    summary = client.get(reverse("usersummary:user", kwargs={"username": "owner"})).content.decode()
    assert "Read me" in summary and "New note on this user" not in summary
