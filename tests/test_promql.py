from __future__ import annotations

import pytest
from django.test import override_settings

from userportal.prometheus import Sample
from userportal.promql import (
    TAG,
    by_tag,
    duration,
    job_selector,
    node_name,
    node_selector,
    quote,
    regex_alternation,
    selector,
    union,
)


def test_quote_escapes_backslash_quote_and_newline():
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_selector_escapes_label_values_from_urls():
    assert selector("slurm_job_memory_usage", {"account": 'def-foo"} or vector(1) #'}) == (
        'slurm_job_memory_usage{account="def-foo\\"} or vector(1) #"}'
    )


def test_regex_alternation_matches_values_literally():
    # A member of def-foo must not widen the match with a pattern such as `def-foo_x|.*`.
    assert selector("m", regex={"account": ["def-foo_x|.*"]}) == r'm{account=~"def\\-foo_x\\|\\.\\*"}'
    assert regex_alternation(["2", "10", "2"]) == "10|2"


def test_regex_alternation_needs_a_value():
    with pytest.raises(ValueError, match="at least one value"):
        regex_alternation([])


@pytest.mark.parametrize("bad", ["", "1abc", "up{}", "a b"])
def test_selector_refuses_bad_metric_names(bad):
    with pytest.raises(ValueError, match="not a metric name"):
        selector(bad)


def test_selector_refuses_bad_label_names():
    with pytest.raises(ValueError, match="not a label name"):
        selector("up", {"bad-label": "x"})


@override_settings(PROMETHEUS_EXTRA_LABELS={"cluster": "narval"})
def test_selector_adds_the_site_labels():
    assert selector("up", {"user": "alice"}) == 'up{cluster="narval",user="alice"}'


def test_duration():
    assert duration(120) == "120s"
    with pytest.raises(ValueError, match="positive"):
        duration(0)


def test_job_and_node_selectors_use_an_exact_match_for_one_value_and_an_alternation_for_several():
    assert job_selector("m", [7]) == 'm{slurmjobid="7"}'
    assert job_selector("m", [8, 7, 7], label="jobid", component="ost") == 'm{component="ost",jobid=~"7|8"}'
    assert node_selector("m", ["nc1:9100"], mode="idle") == 'm{instance="nc1:9100",mode="idle"}'
    assert node_selector("m", ["nc2:9100", "nc1:9100"]) == 'm{instance=~"nc1:9100|nc2:9100"}'
    assert node_name("nc10101.example.org:9100") == "nc10101"


def test_a_union_is_split_back_by_tag():
    expr = union({"used": "sum(a)", "alloc": "count(b)"})
    assert expr == (
        'label_replace(sum(a), "portal_series", "used", "", "") or '
        'label_replace(count(b), "portal_series", "alloc", "", "")'
    )
    answer = [Sample({TAG: "used"}, 1.0), Sample({TAG: "alloc"}, 2.0), Sample({TAG: "used", "x": "1"}, 3.0)]
    assert {tag: [s.value for s in found] for tag, found in by_tag(answer).items()} == {
        "used": [1.0, 3.0],
        "alloc": [2.0],
    }
