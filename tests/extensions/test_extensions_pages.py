"""The extensions pages: the owner's form, the staff panel, the power to decide, and the link on the job page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from extensions_helpers import job_line

from extensions.models import ExtensionRequest, Status
from slurm.decoders import JobState
from userportal.powers import grant, revoke

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_url(job_id="501", username="owner"):
    return reverse("extensions:new", kwargs={"username": username, "job_id": job_id})


def test_the_owner_sees_the_job_and_asks(fake_scontrol, personas):
    client = client_of(personas.owner)
    page = client.get(form_url())
    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="hours"' in text and "01:00:00" in text and "node01" in text
    assert "maximum 2-00:00:00" in text  # the partition's MaxTime
    response = client.post(form_url(), {"hours": "2", "reason": "more iterations"})
    assert response.status_code == 302 and response["Location"] == reverse("extensions:index")
    extension = ExtensionRequest.objects.get()
    assert (extension.job_id, extension.hours, extension.requester, extension.status) == (
        "501",
        2,
        personas.owner,
        Status.PENDING,
    )
    assert "501" in client.get(reverse("extensions:index")).content.decode()


@pytest.mark.parametrize(
    ("data", "field"),
    [({"hours": "99", "reason": "x"}, "hours"), ({"hours": "x", "reason": "x"}, "hours"), ({"hours": "1"}, "reason")],
)
def test_bad_input_is_a_400_with_the_field_error(fake_scontrol, personas, data, field):
    response = client_of(personas.owner).post(form_url(), data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not ExtensionRequest.objects.exists()


def test_a_bad_job_id_is_a_400(fake_scontrol, personas):
    assert client_of(personas.owner).get(form_url("12;ls")).status_code == 400


def test_another_users_job_has_no_form(fake_scontrol, personas):
    fake_scontrol.jobs["501"] = job_line(user="member")
    page = client_of(personas.owner).get(form_url())
    assert page.status_code == 200 and 'name="hours"' not in page.content.decode()
    assert client_of(personas.owner).post(form_url(), {"hours": "1", "reason": "x"}).status_code == 400
    assert client_of(personas.member).get(form_url()).status_code == 403  # Rule.OWNER


def test_staff_see_the_form_page_without_the_form(fake_scontrol, personas):
    page = client_of(personas.staff).get(form_url())
    assert page.status_code == 200 and 'name="hours"' not in page.content.decode()
    assert client_of(personas.staff).post(form_url(), {"hours": "1", "reason": "x"}).status_code == 400


def test_slurmctld_down_is_said_not_a_500(fake_scontrol, personas):
    fake_scontrol.down = True
    client = client_of(personas.owner)
    assert "did not answer" in client.get(form_url()).content.decode()
    response = client.post(form_url(), {"hours": "1", "reason": "x"})
    assert response.status_code == 400 and "did not answer" in response.content.decode()


def ask(personas, fake_scontrol):
    client_of(personas.owner).post(form_url(), {"hours": "2", "reason": "more iterations"})
    return ExtensionRequest.objects.get()


def test_staff_panel_shows_the_request_with_the_job(fake_scontrol, personas):
    extension = ask(personas, fake_scontrol)
    client = client_of(personas.staff)
    listing = client.get(reverse("extensions:staff")).content.decode()
    assert f'href="{reverse("extensions:staff-detail", kwargs={"extension_id": extension.pk})}"' in listing
    page = client.get(reverse("extensions:staff-detail", kwargs={"extension_id": extension.pk}))
    text = page.content.decode()
    assert page.status_code == 200 and "more iterations" in text and "50% of the time limit" in text
    assert "Accept and run scontrol update" in text


def test_accepting_needs_the_power(fake_scontrol, personas, django_capture_on_commit_callbacks):
    extension = ask(personas, fake_scontrol)
    url = reverse("extensions:staff-detail", kwargs={"extension_id": extension.pk})
    revoke(personas.staff, ["extension-decisions"])
    client = client_of(personas.staff)
    assert "Accept and run" not in client.get(url).content.decode()
    assert client.post(url, {"action": "accept", "message": ""}).status_code == 403
    assert fake_scontrol.updates == []
    grant(personas.staff, ["extension-decisions"])
    client = client_of(type(personas.staff).objects.get(pk=personas.staff.pk))  # a fresh permission cache
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "accept", "message": ""})
    assert response.status_code == 302
    extension.refresh_from_db()
    assert extension.status == Status.APPLIED
    assert fake_scontrol.updates[0][0][-1] == "TimeLimit=03:00:00"


def test_refusing_without_a_message_is_a_400(fake_scontrol, personas):
    extension = ask(personas, fake_scontrol)
    url = reverse("extensions:staff-detail", kwargs={"extension_id": extension.pk})
    client = client_of(personas.staff)
    assert client.post(url, {"action": "refuse", "message": ""}).status_code == 400
    assert client.post(url, {"action": "nonsense"}).status_code == 400
    assert client.post(url, {"action": "refuse", "message": "no"}).status_code == 302
    extension.refresh_from_db()
    assert extension.status == Status.REFUSED


def test_the_job_page_links_the_owner_of_a_running_job(personas, settings):
    settings.SLURM_SCONTROL = ""
    running = personas.slurm.job("owner", "def-owner", state=JobState.RUNNING)
    done = personas.owner_job
    client = client_of(personas.owner)
    job_page = lambda job: client.get(  # noqa: E731
        reverse("jobstats:job", kwargs={"username": "owner", "job_id": str(job.id_job)})
    ).content.decode()
    assert form_url(str(running.id_job)) in job_page(running)
    assert 'id="ask-extension"' not in job_page(done)
    staff_page = client_of(personas.staff).get(
        reverse("jobstats:job", kwargs={"username": "owner", "job_id": str(running.id_job)})
    )
    assert 'id="ask-extension"' not in staff_page.content.decode()


def test_the_job_page_links_an_array_task_by_its_array_name(personas, settings):
    settings.SLURM_SCONTROL = ""
    task = personas.slurm.job("owner", "def-owner", state=JobState.RUNNING, id_array_job=5000, id_array_task=7)
    client = client_of(personas.owner)
    page = client.get(reverse("jobstats:job", kwargs={"username": "owner", "job_id": str(task.id_job)}))
    assert form_url("5000_7") in page.content.decode()
    assert form_url(str(task.id_job)) not in page.content.decode()


def test_the_staff_mail_carries_an_absolute_address(fake_scontrol, personas, django_capture_on_commit_callbacks):
    from django.core import mail

    personas.staff.email = "staff@example.org"
    personas.staff.save()
    with django_capture_on_commit_callbacks(execute=True):
        client_of(personas.owner).post(form_url(), {"hours": "2", "reason": "more iterations"})
    extension = ExtensionRequest.objects.get()
    path = reverse("extensions:staff-detail", kwargs={"extension_id": extension.pk})
    assert [m.to for m in mail.outbox] == [["staff@example.org"]]
    assert f"http://testserver{path}" in mail.outbox[0].body
