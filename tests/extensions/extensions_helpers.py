"""The extensions tests' fake scontrol (at the runner boundary) and its records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slurm.commands import CommandResult, SlurmCommandError


def job_line(
    job_id="501", *, user="owner", state="RUNNING", limit="01:00:00", run="00:30:00", nodes="node[01-02]", array=""
):
    """One --oneliner record; ``array`` is e.g. ``1234_7`` (ArrayJobId=1234 ArrayTaskId=7) or ``1234_3-9``."""
    array_fields = ""
    if array:
        array_job, task = array.split("_")
        array_fields = f"ArrayJobId={array_job} ArrayTaskId={task} "
    start = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    return (
        f"JobId={job_id} {array_fields}JobName=sim UserId={user}(1001) GroupId={user}(1001) Priority=1 Account=def-owner "
        f"QOS=normal JobState={state} Reason=None Dependency=(null) RunTime={run} TimeLimit={limit} "
        f"TimeMin=N/A StartTime={start} EndTime=Unknown Partition=cpu NodeList={nodes} NumNodes=2 NumCPUs=4 "
        "Command=/home/owner/run.sh WorkDir=/home/owner"
    )


class FakeScontrol:
    """Answers scontrol's show job/partition/reservation from its attributes and records every update."""

    def __init__(self):
        self.jobs = {"501": job_line()}
        self.partition = "PartitionName=cpu AllowGroups=ALL Default=YES DefaultTime=00:30:00 MaxTime=2-00:00:00 Nodes=node[01-04] State=UP"
        self.reservations = "No reservations in the system"
        self.updates = []  # (argv, as_user)
        self.fail_update = ""
        self.down = False
        self.clusters = []  # the -M of every call (None: none given)

    def run(self, argv, *, timeout, as_user=None, check=True):
        argv = list(argv)
        cluster = None
        if argv[1] == "-M":  # scontrol -M <cluster> ...: recorded, then answered as any other call
            cluster, argv = argv[2], [argv[0], *argv[3:]]
        self.clusters.append(cluster)
        if self.down:
            raise SlurmCommandError("scontrol took more than 5 s", argv=argv, timed_out=True)
        out, err, code = "", "", 0
        if argv[1:3] == ["show", "job"]:
            line = self.jobs.get(argv[-1]) or self.jobs.get(argv[-1].lstrip("0"))  # scontrol reads 0501 as 501
            out, err, code = (
                (line + "\n", "", 0) if line else ("", "slurm_load_jobs error: Invalid job id specified\n", 1)
            )
        elif argv[1:3] == ["show", "partition"]:
            out = self.partition + "\n"
        elif argv[1:3] == ["show", "reservation"]:
            out = self.reservations + "\n"
        elif argv[1] == "update":
            self.updates.append((argv, as_user))
            if self.fail_update:
                out, err, code = "", self.fail_update, 1
        result = CommandResult(tuple(argv), code, out, err)
        if check and code:
            raise SlurmCommandError(f"scontrol exited with {code}", argv=argv, returncode=code, stdout=out, stderr=err)
        return result
