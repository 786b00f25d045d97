"""The users' pages, the staff panel and the operators' commands."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from priorities.models import PriorityAdmin, PriorityRequest, Status

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def form_data(**overrides):
    start = timezone.localtime() + timedelta(hours=3)
    values = {
        "account": "def-owner",
        "gpu_type": "a100",
        "gpu_count": "1",
        "start": start.strftime("%Y-%m-%dT%H:%M"),
        "duration_days": "5",
        "justification": "thesis experiments",
        "ticket": "777",
        "users": "member",
    }
    values.update(overrides)
    return values


def test_user_files_a_request(client, personas):
    client.force_login(personas.owner)
    page = client.get(reverse("priorities:new"))
    assert page.status_code == 200
    assert b'id="priority-limits"' in page.content
    assert b'data-bs-toggle="tooltip"' in page.content
    response = client.post(reverse("priorities:new"), form_data())
    assert response.status_code == 302
    priority = PriorityRequest.objects.get()
    assert (priority.requester, priority.usernames()) == (personas.owner, ["owner", "member"])


def test_policy_violations_are_shown_on_their_fields(client, personas):
    client.force_login(personas.owner)
    response = client.post(reverse("priorities:new"), form_data(duration_days="20", users="outsider"))
    assert response.status_code == 400  # the form again, with the errors
    form = response.context["form"]
    assert "duration_days" in form.errors
    assert "users" in form.errors
    assert not PriorityRequest.objects.exists()


def test_outsider_cannot_choose_another_account(client, personas):
    client.force_login(personas.outsider)
    response = client.post(reverse("priorities:new"), form_data(users=""))
    assert "account" in response.context["form"].errors


def test_my_priorities_lists_own_and_shared_requests_only(client, personas, make_priority):
    mine = make_priority(members=["member"], justification="shared-one")
    make_priority(requester=personas.outsider, account="def-other", justification="not-yours")
    old = make_priority(status=Status.EXPIRED, justification="old-one")
    for persona, expected in (("owner", {mine.pk}), ("member", {mine.pk}), ("outsider", set())):
        client.force_login(getattr(personas, persona))
        listed = {p.pk for p in client.get(reverse("priorities:index")).context["priorities"]}
        assert listed & {mine.pk, old.pk} == expected or persona == "outsider"
        if persona == "outsider":
            assert mine.pk not in listed
    client.force_login(personas.owner)
    archived = client.get(reverse("priorities:index") + "?archived=1")
    assert [p.pk for p in archived.context["priorities"]] == [old.pk]


def test_user_sees_staff_messages_and_status(client, personas, make_priority):
    from priorities import services

    priority = make_priority()
    services.add_message(priority, text="We need the PI's approval.", actor="staffer")
    client.force_login(personas.owner)
    content = client.get(reverse("priorities:index")).content.decode()
    assert "We need the PI&#x27;s approval." in content
    assert "Pending" in content
    assert "valid until" in content


@pytest.mark.parametrize("n", [1, 3])
def test_my_priorities_query_count_is_flat(client, personas, make_priority, n, django_assert_max_num_queries):
    for _i in range(n):
        make_priority(members=["member"])
    client.force_login(personas.owner)
    with django_assert_max_num_queries(8), django_assert_max_num_queries(0, using="slurm"):
        assert len(client.get(reverse("priorities:index")).context["priorities"]) == n


@pytest.mark.parametrize("n", [1, 3])
def test_staff_list_query_count_is_flat(client, personas, make_priority, n, django_assert_max_num_queries):
    for _i in range(n):
        make_priority(members=["member"])
    client.force_login(personas.staff)
    with django_assert_max_num_queries(10), django_assert_max_num_queries(0, using="slurm"):
        assert len(client.get(reverse("priorities:staff")).context["page"].object_list) == n


def test_staff_search_filter_sort_and_archive(client, personas, make_priority):
    a = make_priority(justification="protein folding", gpu_type="v100")
    b = make_priority(justification="llm", members=["member"], gpu_count=2)
    c = make_priority(status=Status.REFUSED, justification="protein again")
    client.force_login(personas.staff)
    url = reverse("priorities:staff")

    def ids(query):
        return [p.pk for p in client.get(url + query).context["page"].object_list]

    assert ids("?q=protein") == [a.pk]
    assert ids("?q=protein&archived=1") == [c.pk]
    assert set(ids("?q=protein&archived=all")) == {a.pk, c.pk}
    assert ids("?q=member") == [b.pk]
    assert ids("?gpu_type=v100") == [a.pk]
    assert ids("?sort=-gpu_count")[0] == b.pk
    assert ids("?status=refused&archived=all") == [c.pk]


def test_staff_accept_with_a_bad_name_shows_the_error(client, personas, make_priority):
    priority = make_priority()
    client.force_login(personas.staff)
    url = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    response = client.post(url, {"action": "accept", "qos_name": "bad name!"})
    assert response.status_code == 400
    assert "letters, digits" in response.content.decode()
    response = client.post(url, {"action": "accept", "qos_name": "prio_ok-1"})
    assert response.status_code == 302
    priority.refresh_from_db()
    assert (priority.status, priority.qos_name, priority.decided_by) == (Status.ACCEPTED, "prio_ok-1", "staffer")
    page = client.get(url).content.decode()
    assert "sacctmgr add qos prio_ok-1 GrpTRES=gres/gpu:a100=1 MaxWall=3-0 Priority=1000" in page


def test_staff_refuse_message_users_and_delete(client, personas, make_priority):
    priority = make_priority()
    client.force_login(personas.staff)
    url = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    assert client.post(url, {"action": "message", "text": "Hello"}).status_code == 302
    assert client.post(url, {"action": "add_users", "users": "member"}).status_code == 302
    assert client.post(url, {"action": "add_users", "users": "outsider"}).status_code == 400
    assert client.post(url, {"action": "remove_user", "username": "member"}).status_code == 302
    assert client.post(url, {"action": "refuse", "reason": "no"}).status_code == 302
    priority.refresh_from_db()
    assert priority.status == Status.REFUSED
    assert priority.messages.count() == 1
    assert not priority.members.exists()
    assert client.post(url, {"action": "delete"}).status_code == 302
    assert not PriorityRequest.objects.filter(pk=priority.pk).exists()


def test_staff_mark_applied_in_manual_mode(client, personas, make_priority):
    priority = make_priority(status=Status.ACCEPTED, qos_name="prio_x")
    client.force_login(personas.staff)
    url = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    client.post(url, {"action": "applied"})
    priority.refresh_from_db()
    assert priority.status == Status.ACTIVE
    assert priority.applied_at


def test_timeline_page_passes_data_as_json(client, personas, make_priority):
    make_priority(status=Status.ACTIVE, start=timezone.now())
    client.force_login(personas.staff)
    content = client.get(reverse("priorities:timeline")).content.decode()
    assert 'id="priority-timeline"' in content
    assert "timeline.js" in content
    assert "<caption>" in content


def test_policy_page(client, personas):
    client.force_login(personas.member)
    content = client.get(reverse("priorities:policy")).content.decode()
    assert "at most 14 days" in content


def test_priorities_admins_command(django_user_model):
    out = StringIO()
    django_user_model.objects.create_user("alice", is_staff=True)
    call_command("priorities_admins", "add", "alice", "alice@example.org", stdout=out)
    call_command("priorities_admins", "list", stdout=out)
    assert "alice\talice@example.org" in out.getvalue()
    call_command("priorities_admins", "remove", "alice", stdout=out)
    assert not PriorityAdmin.objects.exists()


def test_priorities_reconcile_command_dry_run(personas, make_priority, settings):
    settings.PRIORITIES_APPLY_MODE = "automatic"
    make_priority(status=Status.ACCEPTED, qos_name="prio_d", start=timezone.now() - timedelta(minutes=1))
    out = StringIO()
    call_command("priorities_reconcile", "--dry-run", stdout=out)
    assert "activate prio_d" in out.getvalue()
    assert "1 change(s); mode: dry run" in out.getvalue()
    assert PriorityRequest.objects.get().status == Status.ACCEPTED


def test_staff_panel_shows_slurm_errors(client, personas, make_priority):
    failing = make_priority(
        status=Status.ACTIVE,
        qos_name="prio_err",
        sync_error="member has no association with account def-owner: cannot add QOS prio_err",
        sync_error_at=timezone.now(),
    )
    make_priority(status=Status.ACTIVE, qos_name="prio_fine")
    client.force_login(personas.staff)
    listing = client.get(reverse("priorities:staff")).content.decode()
    assert 'id="priorities-sync-errors"' in listing
    assert "1 priority could not be brought in line with Slurm" in listing
    assert listing.count('class="priority-sync-error') == 1
    detail = client.get(reverse("priorities:staff-detail", kwargs={"priority_id": failing.pk})).content.decode()
    assert 'id="priority-sync-error"' in detail
    assert "member has no association with account def-owner" in detail
    failing.sync_error = ""
    failing.save()
    assert 'id="priorities-sync-errors"' not in client.get(reverse("priorities:staff")).content.decode()


def test_staff_panel_banner_while_an_applied_qos_is_past_its_end(client, personas, make_priority):
    now = timezone.now()
    ended = make_priority(
        status=Status.EXPIRED,
        qos_name="prio_p",
        start=now - timedelta(days=5),
        days=2,
        applied_at=now - timedelta(days=5),
    )
    make_priority(status=Status.EXPIRED, qos_name="prio_done", start=now - timedelta(days=5), days=2,
                  applied_at=now - timedelta(days=5), removed_at=now - timedelta(days=3))  # fmt: skip
    client.force_login(personas.staff)
    response = client.get(reverse("priorities:staff"))
    content = response.content.decode()
    assert 'id="priorities-removals-due"' in content
    assert "1 priority has ended but its removal from Slurm is not confirmed" in content
    assert [p.pk for p in response.context["page"].object_list] == [ended.pk]
    assert "Removal pending" in content
    url = reverse("priorities:staff-detail", kwargs={"priority_id": ended.pk})
    assert "Removal pending" in client.get(url).content.decode()
    assert client.post(url, {"action": "removed"}).status_code == 302
    response = client.get(reverse("priorities:staff"))
    assert 'id="priorities-removals-due"' not in response.content.decode()
    assert list(response.context["page"].object_list) == []


@pytest.mark.parametrize(
    ("action", "status"), [("applied", Status.PENDING), ("nonsense", Status.PENDING), ("", Status.ACCEPTED)]
)
def test_a_refused_action_without_a_form_is_a_400_with_the_reason(client, personas, make_priority, action, status):
    """Found by tests/test_form_fuzz.py: the error went onto an unbound form, which raised (500)."""
    priority = make_priority(status=status, qos_name="prio_f" if status == Status.ACCEPTED else None)
    client.force_login(personas.staff)
    url = reverse("priorities:staff-detail", kwargs={"priority_id": priority.pk})
    response = client.post(url, {"action": action})
    assert response.status_code == 400
    expected = "Only an accepted request can be marked applied." if action == "applied" else "Unknown action."
    assert expected in response.content.decode()
    priority.refresh_from_db()
    assert priority.status == status
