"""accountstats: the index, the account page (per-user table, graphs, jobs) and their access."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accountstats import services
from userportal.prometheus import Series

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

ACCOUNT = "def-owner"


def test_index_lists_the_users_accounts_with_their_use(client, personas):
    client.force_login(personas.owner)
    response = client.get(reverse("accountstats:index"))
    assert response.status_code == 200
    [use] = response.context["accounts"]
    assert use.account == ACCOUNT
    assert use.jobs == 2  # the owner's and the member's
    assert use.users == {"owner", "member"}
    assert use.core_hours == pytest.approx(1.0)  # two 1-core jobs of 30 minutes


def test_outsider_is_refused_the_account_page(client, personas):
    client.force_login(personas.outsider)
    assert client.get(reverse("accountstats:account", kwargs={"account": ACCOUNT})).status_code == 403


def test_a_prefix_of_the_account_name_is_not_membership(client, personas):
    personas.slurm.account("def-owner_gpu")
    client.force_login(personas.owner)
    assert client.get(reverse("accountstats:account", kwargs={"account": "def-owner_gpu"})).status_code == 403


def test_member_sees_per_user_allocated_used_and_wasted(client, personas, prom, settings):
    settings.ACCOUNTSTATS_RULES_INTERVAL = 30
    # 240 samples of 2 cores = 2 cores for 2 hours = 4 core-hours allocated; 1 used.
    prom.samples = {
        "cpu_allocated": [({"user": "owner"}, 480.0), ({"user": "member"}, 120.0)],
        "cpu_used": [({"user": "owner"}, 120.0)],
        "gpu_allocated": [({"user": "owner"}, 240.0)],
        "gpu_used": [({"user": "owner"}, 12.0)],
    }
    client.force_login(personas.member)
    response = client.get(reverse("accountstats:account", kwargs={"account": ACCOUNT}))
    assert response.status_code == 200
    rows = {row.user: row for row in response.context["rows"]}
    assert [row.user for row in response.context["rows"]] == ["owner", "member"]
    assert rows["owner"].get("cpu_allocated") == pytest.approx(4.0)
    assert rows["owner"].cpu_wasted == pytest.approx(3.0)
    assert rows["member"].cpu_wasted == pytest.approx(1.0)  # nothing used: all of it wasted
    assert rows["owner"].gpu_wasted == pytest.approx(1.9)
    assert '"account"' not in prom.queries[0]  # label values are quoted literals, not names
    assert 'account="def-owner"' in prom.queries[0]
    jobs = response.context["page"].object_list
    assert {job.user for job in jobs} == {"owner", "member"}


def test_account_page_renders_with_a_notice_when_prometheus_is_down(client, personas, prom):
    prom.down = True
    client.force_login(personas.owner)
    response = client.get(reverse("accountstats:account", kwargs={"account": ACCOUNT}))
    assert response.status_code == 200
    assert response.context["metrics_notice"]
    assert len(response.context["page"].object_list) == 2  # the accounting database still answers


def test_graph_is_a_plotly_figure_with_utc_x_values(client, personas, prom):
    prom.series = [Series({"user": "owner"}, [1_700_000_000.0, 1_700_000_060.0], [2.0, 1.5])]
    client.force_login(personas.owner)
    url = reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "cpu_wasted"})
    body = client.get(url).json()
    assert body["data"][0]["x"] == ["2023-11-14T22:13:20Z", "2023-11-14T22:14:20Z"]
    assert body["data"][0]["name"] == "owner"
    assert "clamp_min" in prom.queries[-1]


def test_graph_answers_json_503_when_prometheus_is_down(client, personas, prom):
    prom.down = True
    client.force_login(personas.owner)
    response = client.get(reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "cpu_used"}))
    assert response.status_code == 503
    assert response.json()["source"] == "prometheus"


def test_graph_of_an_uncollected_metric_is_the_no_data_figure(client, personas, prom):
    client.force_login(personas.owner)
    body = client.get(reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "lustre_ost"})).json()
    assert body["no_data"] is True
    assert body["data"] == []
    assert prom.queries == []


def test_unknown_graph_and_bad_window_are_client_errors(client, personas):
    client.force_login(personas.owner)
    assert client.get(reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "nope"})).status_code == 404
    url = reverse("accountstats:graph", kwargs={"account": ACCOUNT, "name": "cpu_used"})
    assert client.get(url + "?delta=abc").status_code == 400


def test_label_values_are_escaped():
    expr = services.per_user_expr("cpu_used", 'def-x"} or vector(1) #')
    assert 'account="def-x\\"} or vector(1) #"' in expr


@pytest.mark.parametrize("extra_jobs", [1, 3])
def test_account_page_query_count_is_flat(client, personas, prom, extra_jobs, django_assert_max_num_queries):
    for _ in range(extra_jobs):
        personas.slurm.job("member", ACCOUNT, gpus=1)
    client.force_login(personas.owner)
    with django_assert_max_num_queries(12), django_assert_max_num_queries(6, using="slurm"):
        response = client.get(reverse("accountstats:account", kwargs={"account": ACCOUNT}))
    assert len(response.context["page"].object_list) == 2 + extra_jobs


@pytest.mark.parametrize("accounts", [1, 3])
def test_index_query_count_is_flat(client, personas, accounts, django_assert_max_num_queries):
    """The index lists the user's accounts with this period's use: the queries do not grow per account."""
    names = [ACCOUNT] + [f"def-extra{i}" for i in range(accounts - 1)]
    for name in names[1:]:
        personas.slurm.account(name)
        personas.slurm.user("owner", [name])
        personas.slurm.job("owner", name)
    client.force_login(personas.owner)
    with django_assert_max_num_queries(6), django_assert_max_num_queries(6, using="slurm"):
        response = client.get(reverse("accountstats:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert all(name in html for name in names)
