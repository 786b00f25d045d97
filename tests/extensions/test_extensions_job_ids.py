"""One job, one name: another spelling of a job's id, or an array's own id, gets no second request."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from extensions_helpers import job_line

from extensions import services
from extensions.models import ExtensionRequest, Status
from slurm import scontrol

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def ask(user, job_id, hours=24):
    return services.create_request(job_id, hours=hours, reason="more", user=user, cluster="testcluster")


@pytest.mark.parametrize("spelling", ["0501", "00501", "0", "1234_07", "01234_7"])
def test_leading_zeros_are_not_a_job_id(spelling):
    assert not scontrol.JOB_ID.fullmatch(spelling)
    with pytest.raises(ValueError, match="not a job id"):
        scontrol.check_job_id(spelling)


def test_task_zero_is_a_job_id():
    assert scontrol.check_job_id("1234_0") == "1234_0"


def test_other_spellings_get_past_neither_the_total_nor_the_open_request(fake_scontrol, personas, settings):
    settings.EXTENSIONS_MAX_HOURS = 24
    settings.EXTENSIONS_MAX_TOTAL_HOURS = 24
    settings.EXTENSIONS_AUTO_ACCEPT_HOURS = 24
    fake_scontrol.partition = fake_scontrol.partition.replace("MaxTime=2-00:00:00", "MaxTime=UNLIMITED")
    first = ask(personas.owner, "501")
    assert first.status == Status.ACCEPTED
    client = Client()
    client.force_login(personas.owner)
    for spelling in ("0501", "00501"):
        url = reverse("extensions:new", kwargs={"username": "owner", "job_id": spelling})
        assert client.post(url, {"hours": "24", "reason": "more"}).status_code == 400
        with pytest.raises(ValueError, match="not a job id"):
            ask(personas.owner, spelling)
    assert list(ExtensionRequest.objects.values_list("job_id", flat=True)) == ["501"]


def test_an_array_task_has_one_name(fake_scontrol, personas):
    task = job_line("1242", array="1234_7")
    fake_scontrol.jobs = {"1242": task, "1234_7": task}
    first = ask(personas.owner, "1242", hours=2)
    assert first.job_id == "1234_7"  # the id the policy checks, the request keeps and scontrol update is given
    with pytest.raises(ValidationError, match="already has a request"):
        ask(personas.owner, "1234_7", hours=2)
    assert ExtensionRequest.objects.count() == 1


def test_the_database_holds_one_open_request_per_job(fake_scontrol, personas):
    first = ask(personas.owner, "501", hours=2)
    fields = {f: getattr(first, f) for f in ("requester_id", "cluster", "job_id", "account", "partition", "hours")}
    with pytest.raises(IntegrityError), transaction.atomic():
        ExtensionRequest.objects.create(**fields, reason="race")
    ExtensionRequest.objects.create(**{**fields, "cluster": "other"}, reason="another cluster")
    first.status = Status.REFUSED
    first.save()
    assert first.open_slot is None
    ExtensionRequest.objects.create(**fields, reason="after the refusal")  # a closed request leaves room
    applied = ExtensionRequest.objects.create(**{**fields, "job_id": "502"}, reason="x", status=Status.APPLIED)
    ExtensionRequest.objects.create(**{**fields, "job_id": "502"}, reason="y")
    assert applied.open_slot is None


def test_the_array_s_own_id_is_refused(fake_scontrol, personas):
    tasks = [job_line(str(1240 + n), array=f"1234_{n}") for n in (5, 6, 7)]
    fake_scontrol.jobs = {"1234": "\n".join(tasks), "1239": job_line("1234", array="1234_3-9%2")}
    for job_id in ("1234", "1239"):
        with pytest.raises(ValidationError, match="job array"):
            ask(personas.owner, job_id, hours=2)
        with pytest.raises(scontrol.NotOneJob):
            scontrol.job(job_id)
    assert not ExtensionRequest.objects.exists()
    client = Client()
    client.force_login(personas.owner)
    page = client.get(reverse("extensions:new", kwargs={"username": "owner", "job_id": "1234"}))
    assert page.status_code == 200 and "job array" in page.content.decode()
    assert fake_scontrol.updates == []


def test_an_array_task_is_updated_by_its_array_name(fake_scontrol, personas, django_capture_on_commit_callbacks):
    task = job_line("1242", array="1234_7")
    fake_scontrol.jobs = {"1242": task, "1234_7": task}
    extension = ask(personas.owner, "1242", hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(extension, actor="staff")
    assert [argv[-2] for argv, _user in fake_scontrol.updates] == ["JobId=1234_7"]
