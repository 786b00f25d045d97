"""usersummary: one user at a glance; every section from the app that owns it; no section takes the page down."""

from __future__ import annotations

import pytest
from django.urls import reverse

from slurm.decoders import JobState
from userportal import summary
from userportal.summary import SummarySection
from usersummary.associations import associations_of, resolve_qos

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def url(username: str) -> str:
    return reverse("usersummary:user", kwargs={"username": username})


def test_index_redirects_to_the_users_own_summary(client, personas):
    client.force_login(personas.owner)
    response = client.get(reverse("usersummary:index"))
    assert response.status_code == 302
    assert response["Location"] == url("owner")


def test_a_user_sees_their_own_summary_and_not_anothers(client, personas):
    client.force_login(personas.owner)
    assert client.get(url("owner")).status_code == 200
    assert client.get(url("member")).status_code == 403


def test_staff_see_anyones_summary_and_an_unknown_name_is_404(client, personas):
    client.force_login(personas.staff)
    assert client.get(url("member")).status_code == 200
    assert client.get(url("nobody-at-all")).status_code == 404


def test_a_slurm_user_who_never_signed_in_has_a_summary_for_staff(client, personas):
    personas.slurm.user("newcomer", ["def-owner"])
    client.force_login(personas.staff)
    response = client.get(url("newcomer"))
    assert response.status_code == 200
    assert "never signed in" in response.content.decode()


def test_sections_come_in_order_each_in_its_card(client, personas):
    client.force_login(personas.staff)
    response = client.get(url("owner"))
    keys = [item.section.key for item in response.context["sections"]]
    assert keys[0] == "identity"
    assert keys.index("associations") < keys.index("jobs-now") < keys.index("recent-jobs") < keys.index("quotas")
    html = response.content.decode()
    for key in keys:
        assert f'id="summary-{key}"' in html


def test_identity_shows_the_portal_and_slurm_identity(client, personas):
    client.force_login(personas.owner)
    html = client.get(url("owner")).content.decode()
    assert "owner@example.org" in html
    assert "uid " in html


@pytest.mark.parametrize(
    ("ldap", "pam", "says"),
    [
        (False, True, "the cluster's Unix accounts (PAM) or the portal's own accounts"),
        (True, True, "the directory (LDAP), the cluster's Unix accounts (PAM) or the portal's own accounts"),
        (True, False, "the directory (LDAP) or the portal's own accounts"),
        (False, False, "the portal's own accounts"),
    ],
)
def test_identity_names_the_password_logins_an_account_without_a_password_may_use(
    client, personas, settings, ldap, pam, says
):
    settings.LDAP_ENABLED, settings.PAM_ENABLED = ldap, pam
    personas.owner.set_unusable_password()
    personas.owner.save()
    client.force_login(personas.owner)
    html = client.get(url("owner")).content.decode().replace("&#x27;", "'")
    assert f'<dd class="col-sm-9">{says}</dd>' in html


def test_associations_link_to_accountstats(client, personas):
    client.force_login(personas.owner)
    html = client.get(url("owner")).content.decode()
    assert reverse("accountstats:account", kwargs={"account": "def-owner"}) in html


def test_a_section_that_raises_says_which_source_and_the_page_still_answers(client, personas):
    def broken(context):
        raise RuntimeError("bug")

    summary.register_section(
        SummarySection(
            key="broken", module="usersummary", title="Broken", source="the broken source",
            template="usersummary/sections/identity.html", build=broken, order=5,
        )
    )  # fmt: skip
    try:
        client.force_login(personas.owner)
        response = client.get(url("owner"))
    finally:
        summary.unregister_section("broken")
    assert response.status_code == 200
    assert "Unavailable: the broken source." in response.content.decode()
    keys = [item.section.key for item in response.context["sections"]]
    assert {"identity", "associations"} <= set(keys)


def test_sections_of_a_module_not_in_portal_modules_are_not_shown(client, personas, settings):
    settings.PORTAL_MODULES = [m for m in settings.PORTAL_MODULES if m != "quotas"]
    client.force_login(personas.staff)
    keys = [item.section.key for item in client.get(url("owner")).context["sections"]]
    assert "quotas" not in keys


# --- associations -------------------------------------------------------------------------------
def test_qos_inherits_from_the_account_and_applies_deltas(slurm):
    normal = slurm.qos("normal")
    prio = slurm.qos("gpuprio", priority=1000)
    slurm.account("physics", qos=f",{normal.id},")
    slurm.user("alice", ["physics"], delta_qos=f",+{prio.id},")
    (assoc,) = associations_of("alice", "testcluster")
    assert assoc.qos == ["gpuprio", "normal"]


def test_resolve_qos_removes_with_a_minus_delta():
    class Row:
        def __init__(self, qos: str, delta: str = "") -> None:
            self.qos, self.delta_qos = qos, delta

    assert resolve_qos([Row("", ",-1,"), Row(",1,2,")]) == [2]
    assert resolve_qos([Row(",3,"), Row(",1,")]) == [3]


def test_shares_and_limits(slurm):
    slurm.account("chem", shares=3, grp_tres="1=64")
    slurm.account("bio", shares=1)
    slurm.user("bob", ["chem"], shares=2, max_jobs=10, max_wall_pj=120)
    slurm.user("dave", ["chem"], shares=6)
    (assoc,) = associations_of("bob", "testcluster")
    assert assoc.shares == 2
    assert assoc.share_of_account == pytest.approx(0.25)
    assert assoc.account_share_of_parent == pytest.approx(3 / (3 + 1 + 1))  # chem, bio and root's user row
    limits = {str(limit.label): (limit.value, limit.where) for limit in assoc.limits}
    assert limits["Running jobs"] == ("10", "")
    assert limits["Time per job"] == ("02:00:00", "")
    assert limits["Resources, all users together"] == ("cpu=64", "chem")


def test_deleted_associations_are_not_listed(slurm):
    slurm.user("erin", ["alpha", "beta"], deleted=["beta"])
    assert [a.account for a in associations_of("erin", "testcluster")] == ["alpha"]


@pytest.mark.parametrize("n", [1, 4])
def test_the_page_costs_a_bounded_number_of_queries(client, personas, n, django_assert_max_num_queries):
    for i in range(n):
        personas.slurm.user("owner", [f"def-extra{i}"])
        personas.slurm.job("owner", f"def-extra{i}")
        personas.slurm.job("owner", f"def-extra{i}", state=JobState.PENDING)
        personas.slurm.job("owner", f"def-extra{i}", state=JobState.RUNNING)
    client.force_login(personas.staff)
    with django_assert_max_num_queries(40), django_assert_max_num_queries(30, using="slurm"):
        assert client.get(url("owner")).status_code == 200


def test_qos_ids_of_removed_qos_are_dropped_as_sacctmgr_does(slurm):
    high = slurm.qos("high")
    slurm.account("physics")
    slurm.user("alice", ["physics"], qos=f",{high.id},911,")
    (assoc,) = associations_of("alice", "testcluster")
    assert assoc.qos == ["high"]
