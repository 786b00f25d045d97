"""usersummary against the stack, in-process (this checkout's code) on the stack's Slurm database:
associations and QOS as sacctmgr resolves them, pending jobs with squeue's reason, the last jobs as
sacct lists them, and the access rule. Expected values come from Slurm's own commands."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm", "robinhood"])]


@pytest.fixture
def users(stack_dir):
    model = get_user_model()
    return {
        "alice": model.objects.create_user("alice", email="alice@example.org"),
        "bob": model.objects.create_user("bob"),
        "staffer": model.objects.create_user("staffer", is_staff=True),
    }


def sections(client, username: str) -> dict:
    response = client.get(reverse("usersummary:user", kwargs={"username": username}))
    assert response.status_code == 200
    return {item.section.key: item for item in response.context["sections"]}


def sacctmgr_assocs(slurm_cmd, user: str) -> dict[str, tuple[list[str], str]]:
    out = slurm_cmd(["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=account,qos,share"]).stdout
    result = {}
    for line in out.splitlines():
        account, qos, share = line.split("|")
        result[account] = (sorted(q for q in qos.split(",") if q), share)
    return result


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_associations_and_qos_are_sacctmgrs(client, users, slurm_cmd, user):
    client.force_login(users["staffer"])
    item = sections(client, user)["associations"]
    assert item.unavailable is None
    expected = sacctmgr_assocs(slurm_cmd, user)
    from usersummary.associations import associations_of

    found = {a.account: (a.qos, str(a.shares)) for a in associations_of(user, "testcluster")}
    assert found == expected
    for account in expected:
        assert reverse("accountstats:account", kwargs={"account": account}) in item.html


def test_pending_jobs_show_squeues_reason(client, users, slurm_cmd):
    out = slurm_cmd(["squeue", "--noheader", "--states=PENDING", "--user=bob", "--format=%A|%r"]).stdout
    pending = dict(line.split("|") for line in out.splitlines() if line.strip() and line[0].isdigit())
    client.force_login(users["bob"])
    from jobstats import summary
    from userportal.summary import SummaryContext

    data = summary.jobs_now(SummaryContext("bob", users["bob"], "testcluster", users["bob"]))
    assert {str(row.job.id_job): row.reason for row in data["pending"]} == pending
    html = sections(client, "bob")["jobs-now"].html
    for job_id, reason in pending.items():
        assert reason in html
        assert reverse("jobstats:job", kwargs={"username": "bob", "job_id": job_id}) in html


def test_last_jobs_are_sacct_s_latest(client, users, slurm_cmd):
    out = slurm_cmd(
        ["sacct", "-n", "-X", "-P", "-u", "alice", "-S", "2020-01-01", "-o", "JobIDRaw,Start,End,State"]
    ).stdout
    ended = [line.split("|") for line in out.splitlines() if line and line.split("|")[2] not in ("Unknown", "None", "")]
    ended.sort(key=lambda row: (row[1], row[2], int(row[0])), reverse=True)
    from jobstats import summary
    from userportal.summary import SummaryContext

    rows = summary.recent_jobs(SummaryContext("alice", users["staffer"], "testcluster", users["alice"]))["jobs"]
    assert [str(row.job.id_job) for row in rows] == [row[0] for row in ended[: summary.RECENT]]
    assert all(row.verdict in ("good", "fair", "poor", "warning", "") for row in rows)


def test_a_user_is_refused_anothers_summary_and_staff_see_every_section(client, users):
    client.force_login(users["bob"])
    assert client.get(reverse("usersummary:user", kwargs={"username": "alice"})).status_code == 403
    client.force_login(users["staffer"])
    found = sections(client, "alice")
    assert {
        "identity",
        "associations",
        "jobs-now",
        "recent-jobs",
        "quotas",
        "priorities",
        "billing",
        "jobqueue",
    } <= set(found)
    assert {key: item.unavailable for key, item in found.items() if item.unavailable} == {}
    assert "alice@example.org" in found["identity"].html
