"""pages: the public cluster status. Anyone may read it; nothing names a user or an account; the intro's
Markdown is rendered without its HTML; sections are configured; Prometheus down gives a notice."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from pages import services
from userportal.errors import PrometheusUnavailable
from userportal.prometheus import Sample, Series

pytestmark = pytest.mark.django_db


class Prometheus:
    """Answers each query with the first (pattern, answer) whose pattern is found in the PromQL."""

    def __init__(self) -> None:
        self.instant: list[tuple[str, list[Sample]]] = []
        self.ranges: list[tuple[str, list[Series]]] = []
        self.queries: list[str] = []
        self.down = False

    def query(self, expr, *, at=None):
        self.queries.append(expr)
        if self.down:
            raise PrometheusUnavailable("stub: down")
        if expr == "vector(1)":
            return [Sample({}, 1.0)]
        return next((answer for pattern, answer in self.instant if pattern in expr), [])

    def query_range(self, expr, *, start, end, step=None):
        self.queries.append(expr)
        if self.down:
            raise PrometheusUnavailable("stub: down")
        return next((answer for pattern, answer in self.ranges if pattern in expr), [])


@pytest.fixture
def prometheus(monkeypatch, settings):
    settings.PAGES_CACHE_SECONDS = 0
    stub = Prometheus()
    monkeypatch.setattr("userportal.prometheus.get_client", lambda: stub)
    return stub


def series(labels, values):
    return Series(labels=labels, timestamps=[1_800_000_000 + 60 * i for i in range(len(values))], values=values)


def test_anyone_reads_the_page_without_signing_in(client, prometheus, settings):
    settings.PAGES_SECTIONS = ["scheduler", "software"]
    response = client.get(reverse("pages:index"))
    assert response.status_code == 200
    assert [s["name"] for s in response.context["sections"]] == ["scheduler", "software"]


def test_scheduler_graph_has_allocated_usable_and_installed(client, prometheus):
    prometheus.ranges = [
        ("slurm_cpus_alloc{}) + sum", [series({}, [60, 62])]),
        ("slurm_cpus_total", [series({}, [128, 128])]),
        ("slurm_cpus_alloc", [series({}, [40, 42])]),
    ]
    body = client.get(reverse("pages:graph", kwargs={"figure": "cores"})).json()
    assert [t["name"] for t in body["data"]] == ["allocated", "usable", "installed"]
    assert body["data"][2]["y"] == [128, 128]


def test_software_is_shared_by_category_and_never_names_an_executable(client, prometheus, settings):
    settings.PAGES_SOFTWARE = {"GROMACS": "^gmx", "Python": "^python"}
    prometheus.instant = [
        (
            "slurm_job:process_usage:sum_account",
            [
                Sample({"bin": "gmx_mpi"}, 30.0),
                Sample({"bin": "python3.11"}, 10.0),
                Sample({"bin": "alice-secret-tool"}, 10.0),
            ],
        )
    ]
    response = client.get(reverse("pages:index"))
    shares = {s.name: round(s.percent) for s in response.context["shares"]}
    assert shares == {"GROMACS": 60, "Python": 20, "Other": 20}
    html = response.content.decode()
    assert "alice-secret-tool" not in html and "gmx_mpi" not in html
    assert "by (bin)" in next(q for q in prometheus.queries if "process_usage" in q)


def test_login_nodes_graphs_ask_only_the_listed_nodes(client, prometheus, settings):
    settings.PAGES_SECTIONS = ["logins"]
    settings.PAGES_LOGIN_NODES = ["login1=login1.example.org:9100", "dtn1=dtn1.example.org:9100"]
    prometheus.ranges = [
        (
            "node_load1",
            [series({"instance": "login1.example.org:9100"}, [1.5]), series({"instance": "other:9100"}, [9.0])],
        )
    ]
    body = client.get(reverse("pages:graph", kwargs={"figure": "login_load"})).json()
    assert [t["name"] for t in body["data"]] == ["login1"]
    query = next(q for q in prometheus.queries if "node_load1" in q)
    assert 'instance=~"dtn1\\\\.example\\\\.org:9100|login1\\\\.example\\\\.org:9100"' in query
    network = client.get(reverse("pages:graph", kwargs={"figure": "login_network"}))
    assert network.status_code == 200
    assert 'device!="lo"' in prometheus.queries[-1]


def test_without_login_nodes_the_graph_says_so(client, prometheus, settings):
    settings.PAGES_SECTIONS = ["logins"]
    settings.PAGES_LOGIN_NODES = []
    body = client.get(reverse("pages:graph", kwargs={"figure": "login_cpu"})).json()
    assert body["no_data"] is True
    assert "PAGES_LOGIN_NODES" in body["reason"]


def test_filesystem_graphs_need_the_lustre_rules(client, prometheus, settings):
    settings.PAGES_SECTIONS = ["filesystems"]
    settings.PAGES_LUSTRE = False
    assert client.get(reverse("pages:graph", kwargs={"figure": "fs_throughput"})).json()["no_data"] is True
    settings.PAGES_LUSTRE = True
    prometheus.ranges = [("lustre:read_bytes:rate3m", [series({"fs": "lustre05"}, [1048576.0, 2 * 1048576.0])])]
    body = client.get(reverse("pages:graph", kwargs={"figure": "fs_throughput"})).json()
    assert body["data"][0]["name"] == "lustre05"
    assert body["data"][0]["y"] == [1, 2]


def test_a_section_not_configured_has_no_graph(client, prometheus, settings):
    settings.PAGES_SECTIONS = ["software"]
    assert client.get(reverse("pages:graph", kwargs={"figure": "cores"})).status_code == 404
    assert client.get(reverse("pages:graph", kwargs={"figure": "nope"})).status_code == 404


def test_a_bad_period_is_a_400(client, prometheus):
    assert client.get(reverse("pages:graph", kwargs={"figure": "cores"}) + "?delta=5").status_code == 400


def test_prometheus_down_gives_a_notice_and_a_json_503(client, prometheus):
    prometheus.down = True
    response = client.get(reverse("pages:index"))
    assert response.status_code == 200
    assert "Prometheus is not answering" in response.content.decode()
    graph = client.get(reverse("pages:graph", kwargs={"figure": "cores"}))
    assert graph.status_code == 503
    assert graph["Content-Type"].startswith("application/json")


def test_answers_are_cached(client, prometheus, settings):
    settings.PAGES_CACHE_SECONDS = 60
    prometheus.ranges = [("slurm_cpus", [series({}, [1.0])])]
    url = reverse("pages:graph", kwargs={"figure": "cores"}) + "?start=1800000000&end=1800003600"
    client.get(url)
    asked = len(prometheus.queries)
    client.get(url)
    assert len(prometheus.queries) == asked


@pytest.mark.parametrize(
    ("markdown", "present", "absent"),
    [
        ("**Maintenance** on *Monday*", "<strong>Maintenance</strong>", None),
        ("<script>alert(1)</script>", "&lt;script&gt;", "<script>alert"),
        ("[status](https://status.example.org)", '<a href="https://status.example.org">', None),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))", 'href="javascript'),
        ('<img src=x onerror="alert(1)">', "&lt;img", "<img src=x"),
    ],
)
def test_the_intro_is_markdown_without_html(client, prometheus, settings, markdown, present, absent):
    settings.PAGES_INTRO = markdown
    html = client.get(reverse("pages:index")).content.decode()
    assert present in html
    if absent:
        assert absent not in html


def test_the_footer_links_the_page_for_everyone(client, prometheus):
    assert reverse("pages:index") in client.get(reverse("login")).content.decode()


def test_software_patterns_are_checked_at_start_up(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from userportal.conf import strict_patterns

    monkeypatch.setenv("PAGES_SOFTWARE", '{"Broken": "(unclosed"}')
    with pytest.raises(ImproperlyConfigured, match="not a regular expression"):
        strict_patterns("PAGES_SOFTWARE", default={})
    monkeypatch.setenv("PAGES_SOFTWARE", "[1, 2]")
    with pytest.raises(ImproperlyConfigured, match="JSON object"):
        strict_patterns("PAGES_SOFTWARE", default={})


def test_classify_takes_the_first_matching_category():
    patterns = [("A", re.compile("^a")), ("AB", re.compile("^ab"))]
    assert services.classify("abc", patterns) == "A"
    assert services.classify("zzz", patterns) == "Other"
