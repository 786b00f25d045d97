"""The exporter presets against what the exporters really expose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cloudstats.presets import PRESETS

# Captured from the stack's prometheus-libvirt-exporter 0.2.0 (--libvirt.export-nova-metadata)
# with three running guests: scripts/stack.d/libvirt.sh.
DEBIAN_EXPOSITION = Path(__file__).with_name("debian_exporter.prom").read_text()
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? ", re.M)


def exposed() -> dict[str, set[str]]:
    """metric name -> the label names its samples carry."""
    found: dict[str, set[str]] = {}
    for match in SAMPLE.finditer(DEBIAN_EXPOSITION):
        names = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', match.group("labels") or ""))
        found.setdefault(match.group("name"), set()).update(names)
    return found


def test_every_name_of_the_debian_preset_is_exposed_by_the_debian_exporter():
    preset = PRESETS["debian"]
    metrics = exposed()
    domain_labels = {preset.uuid_label, preset.name_label, preset.project_label, preset.flavor_label}
    for counter in (preset.cpu, preset.disk_read_bytes, preset.disk_write_bytes, preset.disk_read_requests,
                    preset.disk_write_requests, preset.net_rx_bytes, preset.net_tx_bytes):  # fmt: skip
        assert domain_labels <= metrics[counter.metric], counter.metric
    assert domain_labels <= metrics[preset.vcpus_metric]
    assert domain_labels <= metrics[preset.memory_metric]
    assert preset.disk_label in metrics[preset.disk_read_bytes.metric]
    assert preset.net_label in metrics[preset.net_rx_bytes.metric]
    assert preset.libvirt_up_metric in metrics
    # and what it lacks, the pages say
    assert not any("user" in name for labels in metrics.values() for name in labels)
    assert not any("vcpu_time" in name or "balloon" in name for name in metrics)
    assert [str(item) for item in preset.lacks()] == [
        "the CPU time of each vCPU",
        "the memory in use inside the instances",
        "the OpenStack user who started each instance",
    ]


def test_the_trailblazingturtle_preset_reports_everything():
    preset = PRESETS["trailblazingturtle"]
    assert preset.lacks() == []
    assert preset.cpu.scale == pytest.approx(1e-9)  # nanoseconds
    assert preset.memory_scale == 1024  # KiB
    assert preset.vcpus_counted  # one libvirtd_domain_vcpu_time series per vCPU
