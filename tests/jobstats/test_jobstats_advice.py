"""Advice rules: the built-in table (domain 7.4) and site rules as data."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from jobstats.domain import advice
from jobstats.domain.advice import JobFacts, RuleError, Severity, evaluate, load_rules_source, modules_loaded, registry
from jobstats.domain.advice import evaluation as advice_evaluation

BASE = JobFacts(
    state="COMPLETED",
    started=True,
    cores=8,
    nodes=1,
    memory_mb=32000,
    timelimit_minutes=600,
    elapsed_seconds=7200,
    elapsed_hours=2.0,
)


def ids(facts: JobFacts, **kwargs) -> list[str]:
    return [finding.rule for finding in evaluate(facts, registry(), **kwargs)]


def test_a_healthy_job_gets_no_advice():
    facts = replace(BASE, cores_used=7.5, mem_max_mb=20000, threads_running=8)
    assert ids(facts) == []


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"state": "OUT_OF_MEMORY"}, "oom"),
        ({"state": "TIMEOUT"}, "timeout"),
        ({"state": "NODE_FAIL"}, "node-failure"),
        ({"node_events": 2}, "node-events"),
        ({"timelimit_minutes": 30, "elapsed_seconds": 600}, "short-job-short-limit"),
        ({"elapsed_seconds": 600}, "short-job"),
        ({"cores_used": 0.9}, "serial-on-many-cores"),
        ({"cores_used": 2.5}, "cpu-under-half"),
        ({"mem_max_mb": 1000.0}, "memory-under-tenth"),
        ({"gpus": 2, "gpu_util": 5.0}, "idle-gpus"),
        ({"gpus": 4, "gpus_seen": 1, "gpu_util": 80.0}, "unseen-gpus"),
        ({"threads_running": 20.0}, "oversubscribed-threads"),
        ({"threads_running": 3.0}, "undersubscribed-threads"),
        ({"nodes": 3}, "multi-node"),
        ({"singleton": True}, "singleton"),
        ({"dependencies": (5,)}, "depends-on-jobs"),
        ({"dependents": (9,)}, "has-dependents"),
        ({"exclusive": True}, "exclusive"),
        ({"licenses": "matlab:1"}, "licenses"),
        ({"requested_nodelist": "cn01"}, "nodelist"),
        ({"excluded_nodes": "cn02"}, "excluded-nodes"),
        ({"requeue": True}, "requeue"),
        ({"no_requeue": True}, "no-requeue"),
        ({"reservation": "maint"}, "reservation"),
        ({"switches": "1"}, "switches"),
    ],
)
def test_each_builtin_rule_fires_on_its_condition(changes, rule):
    assert rule in ids(replace(BASE, **changes))


def test_unknown_metrics_fire_no_metric_rule():
    assert ids(replace(BASE, cores_used=None, mem_max_mb=None, gpu_util=None, gpus=2)) == []


def test_script_rules_name_the_line():
    script = "#!/bin/bash\n#SBATCH -c 8\nmodule load gromacs/2023\nsleep 600\ngmx mdrun -nt 4 -deffnm md\nconda activate env\n"
    facts = replace(BASE, script=script, has_script=True, modules=modules_loaded(script))
    findings = {f.rule: f for f in evaluate(facts, registry())}
    assert findings["sleep"].line == 4
    assert findings["gromacs-no-launcher"].line == 5
    assert findings["gromacs-thread-mismatch"].line == 5
    assert findings["conda"].line == 6
    assert "Line 4" in findings["sleep"].message


def test_gromacs_with_srun_and_matching_threads_is_fine():
    script = "module load gromacs\nsrun gmx_mpi mdrun -nt 8 -deffnm md\n"
    facts = replace(BASE, script=script, modules=modules_loaded(script))
    assert not {"gromacs-no-launcher", "gromacs-thread-mismatch"} & set(ids(facts))


def test_module_detection_accepts_ml_force_and_missing_versions():
    script = "module --force load StdEnv/2023 gromacs\nml amber/22\n  module load lammps-omp/2023 # comment\n"
    assert modules_loaded(script) == {"stdenv", "gromacs", "amber", "lammps-omp"}


def test_findings_are_sorted_most_severe_first():
    facts = replace(BASE, state="OUT_OF_MEMORY", requeue=True, excluded_nodes="x")
    severities = [f.severity for f in evaluate(facts, registry())]
    assert severities == sorted(severities, reverse=True)
    assert severities[0] is Severity.CRITICAL


def test_messages_fill_in_facts():
    finding = next(f for f in evaluate(replace(BASE, cores_used=2.5), registry()) if f.rule == "cpu-under-half")
    assert "2.5 of its 8 cores" in finding.message


def test_doc_links_follow_the_setting(settings):
    facts = replace(BASE, state="OUT_OF_MEMORY")
    assert evaluate(facts, registry(), docs_base="")[0].doc_url == ""
    assert evaluate(facts, registry(), docs_base="https://docs.example.org/jobs")[0].doc_url == (
        "https://docs.example.org/jobs#out-of-memory"
    )


def test_a_site_json_rule_file_adds_and_replaces_rules(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "home-io",
                    "severity": "warning",
                    "anchor": "scratch",
                    "message": "Ran {elapsed_hours:.1f} h from {work_dir}.",
                    "when": {
                        "all": [
                            {"fact": "work_dir", "op": "startswith", "value": "/home/"},
                            {"fact": "elapsed_hours", "op": ">", "value": 1},
                            {"not": {"fact": "partition", "op": "in", "value": ["debug"]}},
                        ]
                    },
                },
                {
                    "id": "oom",
                    "severity": "info",
                    "message": "Site text for OOM.",
                    "when": {"fact": "state", "op": "==", "value": "OUT_OF_MEMORY"},
                },
                {"id": "python-line", "severity": "info", "message": "Python on line {line}.", "line": "^python "},
            ]
        )
    )
    rules = registry([str(path)])
    facts = replace(BASE, work_dir="/home/owner/x", state="OUT_OF_MEMORY", script="python run.py\n")
    findings = {f.rule: f for f in evaluate(facts, rules)}
    assert findings["home-io"].message == "Ran 2.0 h from /home/owner/x."
    assert findings["home-io"].severity is Severity.WARNING
    assert findings["oom"].message == "Site text for OOM."
    assert findings["python-line"].line == 1


def test_a_module_of_rules(tmp_path, monkeypatch):
    (tmp_path / "site_rules.py").write_text(
        "from jobstats.domain.advice import AdviceRule, Severity\n"
        "RULES = [AdviceRule('big-memory', Severity.INFO, 'Big: {memory_mb} MB', 'mem', lambda f: f.memory_mb > 1000),\n"
        "         {'id': 'from-dict', 'severity': 'info', 'message': 'x'}]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rules = load_rules_source("site_rules")
    assert [rule.id for rule in rules] == ["big-memory", "from-dict"]


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "x", "severity": "fatal", "message": "m"},
        {"id": "X Y", "severity": "info", "message": "m"},
        {"id": "x", "severity": "info", "message": "{nosuchfact}"},
        {"id": "x", "severity": "info", "message": "m", "when": {"fact": "nosuch", "op": "==", "value": 1}},
        {"id": "x", "severity": "info", "message": "m", "when": {"fact": "cores", "op": "~~", "value": 1}},
        {"id": "x", "severity": "info", "message": "m", "line": "("},
        {"id": "x", "severity": "info", "message": "m", "colour": "red"},
    ],
)
def test_bad_site_rules_are_refused_with_a_reason(tmp_path, bad):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([bad]))
    with pytest.raises(RuleError):
        load_rules_source(str(path))


def test_a_broken_site_rule_never_breaks_evaluation():
    def boom(facts):
        raise KeyError("bug")

    rule = advice.AdviceRule("boom", Severity.INFO, "never", when=boom)
    assert evaluate(BASE, [rule]) == []


def test_disabled_builtins_and_an_unusable_setting_fall_back(settings):
    settings.JOBSTATS_ADVICE_DISABLED = ["oom"]
    settings.JOBSTATS_ADVICE_RULES = ["/nonexistent/rules.json"]
    advice_evaluation._cached_registry.cache_clear()
    try:
        rules = advice_evaluation.site_rules()
        assert "oom" not in {rule.id for rule in rules}
        assert "timeout" in {rule.id for rule in rules}
    finally:
        advice_evaluation._cached_registry.cache_clear()
