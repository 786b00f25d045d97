"""Every node's Slurm state, from ``scontrol show node --oneliner`` (run through slurm.commands).

One line per node of ``Key=Value`` pairs; a few values hold spaces (``OS=Linux 6.1 ...``,
``Reason=Not responding [slurm@2026-12-07T11:00:00]``), so a value runs up to the next key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from slurm.commands import SlurmCommandError, run_command
from slurm.scontrol import fields

GPU = re.compile(r"(?:^|,)gres/gpu=(\d+)")


@dataclass(frozen=True)
class NodeState:
    name: str
    state: str
    reason: str
    cpus_alloc: int
    cpus_total: int
    mem_alloc_mb: int
    mem_total_mb: int
    gpus_alloc: int
    gpus_total: int
    partitions: str
    load: float | None

    @property
    def cpu_ratio(self) -> float:
        return self.cpus_alloc / self.cpus_total if self.cpus_total else 0.0

    @property
    def mem_ratio(self) -> float:
        return self.mem_alloc_mb / self.mem_total_mb if self.mem_total_mb else 0.0

    @property
    def unavailable(self) -> bool:
        """Down, drained, failing or not responding: shown in red."""
        words = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "*")
        return any(word in self.state for word in words)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _gpus(tres: str | None) -> int:
    match = GPU.search(tres or "")
    return int(match.group(1)) if match else 0


def _load(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def parse_nodes(output: str) -> list[NodeState]:
    """The nodes of ``scontrol show node --oneliner`` output, by name."""
    nodes = []
    for line in output.splitlines():
        pairs = fields(line)
        if not pairs.get("NodeName"):
            continue
        nodes.append(
            NodeState(
                name=pairs["NodeName"],
                state=pairs.get("State", ""),
                reason=pairs.get("Reason", ""),
                cpus_alloc=_int(pairs.get("CPUAlloc")),
                cpus_total=_int(pairs.get("CPUTot")),
                mem_alloc_mb=_int(pairs.get("AllocMem")),
                mem_total_mb=_int(pairs.get("RealMemory")),
                gpus_alloc=_gpus(pairs.get("AllocTRES")),
                gpus_total=_gpus(pairs.get("CfgTRES")),
                partitions=pairs.get("Partitions", ""),
                load=_load(pairs.get("CPULoad")),
            )
        )
    return sorted(nodes, key=lambda node: node.name)


def slurm_nodes(node: str | None = None) -> list[NodeState]:
    """The nodes as slurmctld sees them now (one node when ``node`` is given).

    Raises SlurmCommandError (a DataSourceError) when scontrol is not configured, missing, slow or fails.
    """
    scontrol = settings.SLURM_SCONTROL
    if not scontrol:
        raise SlurmCommandError("SLURM_SCONTROL is empty", argv=["scontrol"], not_found=True)
    argv = [scontrol, "show", "node", "--oneliner", *([node] if node else [])]
    result = run_command(argv, timeout=settings.SLURM_SCONTROL_TIMEOUT)
    return parse_nodes(result.stdout)
