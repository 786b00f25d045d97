"""The stack's generated series behave as slurm-job-exporter v0.4.12's (scripts/stack.d/gen_metrics.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parent.parent / "scripts" / "stack.d" / "gen_metrics.py"


@pytest.fixture
def gen(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_EXTRA_LABELS", raising=False)
    spec = importlib.util.spec_from_file_location("gen_metrics", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def series_of(gen, tmp_path, **job):
    fx = gen.Families()
    defaults = dict(
        jobid="42", user="alice", account="physics", node="cpu01", cores=2, t0=1000, t1=1600, step=30,
        cpu_seconds=1100.0, mem_limit=4 * 2**30, mem_peak=2**30, gpus=[], seed=3,
        exes=[("/usr/bin/python3.11", 0.9), ("/usr/bin/bash", 0.1)],
    )  # fmt: skip
    gen.stack_job_series(fx, **{**defaults, **job})
    out = tmp_path / "out.om"
    gen.Families.write(fx, str(out))
    lines = [line for line in out.read_text().splitlines() if line and not line.startswith("#")]
    return lines


def test_no_cluster_label_and_cpuset_core_numbers(gen, tmp_path):
    lines = series_of(gen, tmp_path)
    assert lines and not any("cluster=" in line for line in lines)
    cores = {m.group(1) for line in lines if (m := re.search(r'core="(\d+)"', line))}
    assert cores == {"6", "7"}  # the job's cpuset on an 8-CPU node, not 0..n-1


def test_process_series_only_past_60_cpu_seconds_and_never_bash(gen, tmp_path):
    lines = [line for line in series_of(gen, tmp_path) if line.startswith("slurm_job_process_usage_total")]
    assert lines and all('exe="/usr/bin/python3.11"' in line for line in lines)
    assert min(float(line.split()[1]) for line in lines) >= 60  # the series appears once past 60 s
    short = series_of(gen, tmp_path, cpu_seconds=50.0)
    assert not [line for line in short if line.startswith("slurm_job_process_usage_total")]


def states(lines):
    return {m.group(1) for line in lines if (m := re.search(r'state="([^"]+)"', line))}


def test_thread_states_only_when_present(gen, tmp_path):
    assert states(series_of(gen, tmp_path)) == {"running", "sleeping"}
    assert states(series_of(gen, tmp_path, cpu_seconds=0.0, cores=1)) == {"sleeping"}


def test_cgroup_v2_job_has_no_memory_max_and_its_usage_reaches_the_peak(gen, tmp_path):
    lines = series_of(gen, tmp_path, memory_max=False)
    assert not [line for line in lines if line.startswith("slurm_job_memory_max")]
    usage = [float(line.split()[1]) for line in lines if line.startswith("slurm_job_memory_usage{")]
    assert max(usage) == 2**30
    with_max = series_of(gen, tmp_path)
    peak = [float(line.split()[1]) for line in with_max if line.startswith("slurm_job_memory_max")]
    assert peak[-1] == 2**30 and peak == sorted(peak)


def test_a_gpu_job_on_a_node_without_nvml_has_no_gpu_series(gen, tmp_path):
    measured = series_of(gen, tmp_path, gpus=[("a100", 0)])
    assert [line for line in measured if line.startswith("slurm_job_utilization_gpu{")]
    blind = series_of(gen, tmp_path, gpus=[("a100", 0)], gpu_measured=False)
    assert not [line for line in blind if "_gpu{" in line]
    assert [line for line in blind if line.startswith("slurm_job_core_usage_total")]


def test_extra_labels_are_added_only_when_configured(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_EXTRA_LABELS", "cluster=testcluster")
    spec = importlib.util.spec_from_file_location("gen_metrics_extra", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert all('cluster="testcluster"' in line for line in series_of(module, tmp_path))
