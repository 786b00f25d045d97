from __future__ import annotations

import pytest
from django.test import override_settings

from userportal.promql import duration, quote, regex_alternation, selector


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
