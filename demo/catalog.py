"""The demo cluster's fixed inventory and vocabulary: node groups, names, scripts, failure codes.

Nothing here is random: the builders in this package draw from these tables with one seeded Random.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slurm.decoders import NO_VAL

Row = dict[str, Any]  # a job or step row by column attribute name, as fast_insert() takes it
MIB = 1024 * 1024
DAY = 86400
REQUEUE, RESIZING, REVOKED = 0x400, 0x2000, 0x80000
SIG_OOM = 253  # slurmstepd's exit status for an OOM kill; sacct prints it as 0:125
MIN_JOBS = 50

FIRST_NAMES = (
    "carol dave erin frank grace heidi ivan judy mallory nina oscar peggy quentin rupert sybil trent "
    "ursula victor wendy xavier yvonne zack amelia benjamin chloe daniel emma felix gabriel hannah isaac "
    "julia kevin laura marco nadia olivia pablo rosa samuel tara ulrich vera william ximena yusuf zoe "
    "aditya beatriz chen dmitri elif fatima goran hiroshi ingrid jamal kenji leila mateo noor orla priya "
    "qiang ravi sofia tomas uma valentina wei yara zeynep anouk bjorn camille diego eitan farah gianni "
    "helene ilse jorge katarina lucas maeve nikolai omar petra rafael sana thibault ugo vikram xin yohan"
).split()
SURNAMES = (
    "smith martin tremblay roy gagnon cote bouchard gauthier morin lavoie fortin gagne ouellet pelletier "
    "belanger levesque bergeron leblanc paquette girard simard boucher caron beaulieu cloutier dube poirier "
    "fournier lapointe leclerc lefebvre poulin thibault dion nguyen wong chen patel singh kim li wang zhang "
    "brown wilson taylor anderson thomas jackson white harris clark lewis walker hall young allen wright "
    "scott green baker adams nelson hill campbell mitchell roberts carter phillips evans turner torres"
).split()
DEPARTMENTS = ("physics", "chem", "biology", "engineering", "compsci")


@dataclass(frozen=True)
class NodeGroup:
    prefix: str
    width: int
    count: int
    partition: str
    cpus: int
    mem_mb: int
    gpus: int = 0
    gpu_type: str = ""


# Two CPU generations in one partition make multi-node jobs span prefixes: cn[0012,0040],cnx[007].
NODE_GROUPS = (
    NodeGroup("cn", 4, 128, "cpu", 64, 256_000),
    NodeGroup("cnx", 3, 64, "cpu", 96, 384_000),
    NodeGroup("lm", 2, 4, "largemem", 64, 2_048_000),
    NodeGroup("ga", 2, 16, "gpu", 48, 512_000, 4, "a100"),
    NodeGroup("gv", 2, 24, "gpu", 32, 192_000, 4, "v100"),
)


@dataclass(frozen=True)
class Node:
    name: str
    index: int  # position in slurm.conf order, which is what node_inx counts
    group: NodeGroup


@dataclass
class DemoUser:
    name: str
    uid: int
    weight: float
    gpu_user: bool
    mem_per_cpu_habit: bool
    efficiency: float
    preferred_gpu: str
    accounts: list[tuple[str, int]] = field(default_factory=list)  # live (account, id_assoc), default first
    old_assocs: list[tuple[str, int, int]] = field(default_factory=list)  # deleted: (account, id_assoc, removed at)


@dataclass(frozen=True)
class Submitter:
    """Who submits a job: a person and the association (account, id_assoc) it runs under."""

    person: DemoUser
    account: str
    assoc_id: int


@dataclass
class Resources:
    """What one job asked for and got: its partition, nodes, CPUs, GPUs, memory, time limit and QOS."""

    partition: str
    nodes: list[Node]
    cpus: int
    gpus_per_node: int
    gpu_type: str
    mem_req: int
    mem_total_mb: int
    timelimit: int  # minutes or INFINITE
    qos: int


SCRIPT_TEMPLATES = {
    "run_md": "module load gromacs/2023.2\nsrun gmx_mpi mdrun -deffnm md -maxh {hours}\n",
    "train": "module load python/3.11 cuda/12.2\nsource ~/venvs/torch/bin/activate\npython train.py --epochs 40\n",
    "preprocess": "module load python/3.11\npython preprocess.py --input $SCRATCH/raw --output $SCRATCH/clean\n",
    "analysis": "module load r/4.3.1\nRscript analysis.R\n",
    "sim": "module load openmpi/4.1.5\nsrun ./simulate --steps 100000\n",
    "align": "module load bwa samtools\nbwa mem -t $SLURM_CPUS_PER_TASK ref.fa reads.fq | samtools sort -o out.bam\n",
    "sweep": "python sweep.py --index $SLURM_ARRAY_TASK_ID\n",
    "lammps": "module load lammps/2Aug2023\nsrun lmp -in in.melt\n",
}
# How a finished job ended, with its weight; every outcome but the first is also forced once in small demos.
OUTCOME_WEIGHTS = {
    "COMPLETED": 70,
    "FAILED": 9,
    "TIMEOUT": 5,
    "OUT_OF_MEMORY": 4,
    "CANCELLED": 4,
    "CANCELLED_PENDING": 3,
    "NODE_FAIL": 0.6,
    "PREEMPTED": 0.4,
    "BOOT_FAIL": 0.1,
    "DEADLINE": 0.1,
}
SRUN_COMMANDS = ("python", "gmx_mpi", "lmp", "simulate", "bash", "orted", "hydra_pmi_proxy", "namd2")
FAIL_CODES = (256, 256, 256, 256, 512, 127 << 8, 139 << 8, 11, 6, 9)  # raw wait statuses
EVENT_REASONS = (
    ("Not responding", NO_VAL, 1),
    ("Kill task failed", NO_VAL, 0x200 | 2),
    ("GPU ECC errors, RMA ticket 4711", 0, 0x200 | 2),
    ("maintenance: firmware update", 0, 0x200 | 2),
    ("NHC: check_fs_mount: /scratch not mounted", 0, 0x200 | 1),
)
