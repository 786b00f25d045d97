"""The metric and label names of the libvirt exporters the portal knows (CLOUDSTATS_EXPORTER).

Two exporters label each domain with the OpenStack metadata nova writes into its XML:

* ``debian``: Debian's prometheus-libvirt-exporter (0.2.0, ``--libvirt.export-nova-metadata``),
  the one the test stack runs: ``libvirt_domain_*`` series with ``uuid``, ``name``, ``flavor`` and
  ``project_name``; CPU time in seconds, memory in bytes. No OpenStack user, no per-vCPU time and
  no memory use inside the guest.
* ``trailblazingturtle``: guilbaults/libvirtd_exporter (branch ``metadata``), TrailblazingTurtle's:
  ``libvirtd_domain_*`` series with ``uuid``, ``instance_name``, ``instance_type``, ``user_name``
  and ``project_name``; CPU times in nanoseconds, balloon figures in KiB.

Whatever a preset lacks is None: its graphs answer "no data" with the reason and the pages say
which figures the site's exporter does not report.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

KIB = 1024.0
NANOSECOND = 1e-9


@dataclass(frozen=True)
class Counter:
    """A counter and the factor that turns its unit into seconds or bytes."""

    metric: str
    scale: float = 1.0


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    # labels every domain series carries
    uuid_label: str
    name_label: str
    project_label: str
    flavor_label: str | None
    user_label: str | None
    # one series per running domain: its vCPUs (a gauge, or counted from a per-vCPU series)
    vcpus_metric: str
    vcpus_counted: bool  # True: count(vcpus_metric) by domain, one series per vCPU
    cpu: Counter  # CPU time of the whole domain
    memory_metric: str  # memory allocated to the domain
    memory_scale: float
    # per-vCPU CPU time, and the balloon's figure of what the guest does not use
    vcpu: Counter | None
    vcpu_label: str | None
    memory_unused_metric: str | None
    disk_read_bytes: Counter
    disk_write_bytes: Counter
    disk_read_requests: Counter
    disk_write_requests: Counter
    disk_label: str
    net_rx_bytes: Counter
    net_tx_bytes: Counter
    net_label: str
    # 1 when the exporter reached libvirtd at its last scrape (beside Prometheus' own up)
    libvirt_up_metric: str | None

    def lacks(self) -> list[str | Promise]:
        """What the pages say this exporter does not report."""
        missing: list[str | Promise] = []
        if self.vcpu is None:
            missing.append(_("the CPU time of each vCPU"))
        if self.memory_unused_metric is None:
            missing.append(_("the memory in use inside the instances"))
        if self.user_label is None:
            missing.append(_("the OpenStack user who started each instance"))
        if self.flavor_label is None:
            missing.append(_("the flavor of each instance"))
        return missing


PRESETS: dict[str, Preset] = {
    "debian": Preset(
        name="debian",
        title="prometheus-libvirt-exporter (Debian)",
        uuid_label="uuid",
        name_label="name",
        project_label="project_name",
        flavor_label="flavor",
        user_label=None,
        vcpus_metric="libvirt_domain_info_virtual_cpus",
        vcpus_counted=False,
        cpu=Counter("libvirt_domain_info_cpu_time_seconds_total"),
        memory_metric="libvirt_domain_info_maximum_memory_bytes",
        memory_scale=1.0,
        vcpu=None,
        vcpu_label=None,
        memory_unused_metric=None,
        disk_read_bytes=Counter("libvirt_domain_block_stats_read_bytes_total"),
        disk_write_bytes=Counter("libvirt_domain_block_stats_write_bytes_total"),
        disk_read_requests=Counter("libvirt_domain_block_stats_read_requests_total"),
        disk_write_requests=Counter("libvirt_domain_block_stats_write_requests_total"),
        disk_label="target_device",
        net_rx_bytes=Counter("libvirt_domain_interface_stats_receive_bytes_total"),
        net_tx_bytes=Counter("libvirt_domain_interface_stats_transmit_bytes_total"),
        net_label="target_device",
        libvirt_up_metric="libvirt_up",
    ),
    "trailblazingturtle": Preset(
        name="trailblazingturtle",
        title="libvirtd_exporter (guilbaults, metadata branch)",
        uuid_label="uuid",
        name_label="instance_name",
        project_label="project_name",
        flavor_label="instance_type",
        user_label="user_name",
        vcpus_metric="libvirtd_domain_vcpu_time",
        vcpus_counted=True,
        cpu=Counter("libvirtd_domain_cpu_time", NANOSECOND),
        memory_metric="libvirtd_domain_balloon_current",
        memory_scale=KIB,
        vcpu=Counter("libvirtd_domain_vcpu_time", NANOSECOND),
        vcpu_label="vcpu",
        memory_unused_metric="libvirtd_domain_balloon_usable",
        disk_read_bytes=Counter("libvirtd_domain_block_read_bytes"),
        disk_write_bytes=Counter("libvirtd_domain_block_write_bytes"),
        disk_read_requests=Counter("libvirtd_domain_block_read_requests"),
        disk_write_requests=Counter("libvirtd_domain_block_write_requests"),
        disk_label="path",
        net_rx_bytes=Counter("libvirtd_domain_net_rx_bytes"),
        net_tx_bytes=Counter("libvirtd_domain_net_tx_bytes"),
        net_label="interface",
        libvirt_up_metric=None,
    ),
}


def current() -> Preset:
    """The site's preset (CLOUDSTATS_EXPORTER; settings.py checks the name)."""
    return PRESETS[settings.CLOUDSTATS_EXPORTER]
