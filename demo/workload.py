"""The demo cluster's workload: which jobs are submitted when, by whom, and of which kind.

Body jobs spread over the window (single jobs, arrays, requeued, resized, revoked and
heterogeneous jobs); the tail runs or waits at "now".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import accumulate

from demo.catalog import DAY, OUTCOME_WEIGHTS, REQUEUE, RESIZING, REVOKED, DemoUser, Resources, Row, Submitter
from demo.cluster import Cluster
from demo.jobs import JobRows
from slurm.decoders import INFINITE, NO_VAL, decode_state


class Workload:
    """Every job of ``jobs`` records with its steps, built by one JobRows from the cluster's Random."""

    def __init__(self, cluster: Cluster, *, jobs: int) -> None:
        self.cluster = cluster
        self.rng = cluster.rng
        self.n_jobs = jobs
        self.jobs = JobRows(cluster)
        self.states: Counter[str] = Counter()
        self._cum_weights: list[float] = []
        self._unlimited_shown = False

    def _plans(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(body, tail): job kinds with their row counts. The tail runs at "now"."""
        rng, n = self.rng, self.n_jobs
        specials = [("requeue", 2)] * max(2, n // 400) + [("resize", 2)] * max(1, n // 3000)
        specials += [("revoked", 1)] * max(1, n // 3000) + [("het", 2)] * max(1, n // 3000)
        tail = [("pending", 1)] * max(3, n // 250) + [("running", 1)] * max(3, n // 200) + [("array_pending", 3)]
        remaining = n - sum(rows for _k, rows in specials) - sum(rows for _k, rows in tail)
        body: list[tuple[str, int]] = []
        forced_arrays = 1
        while remaining > 0:
            if remaining >= 4 and (forced_arrays or rng.random() < 0.02):
                size = min(rng.randint(4, 30), remaining)
                body.append(("array", size))
                remaining -= size
                forced_arrays = 0
            else:
                body.append(("single", 1))
                remaining -= 1
        body += specials
        rng.shuffle(body)
        return body, tail

    def _pick_user(self) -> Submitter:
        if len(self._cum_weights) != len(self.cluster.users):
            self._cum_weights = list(accumulate(person.weight for person in self.cluster.users))
        person = self.rng.choices(self.cluster.users, cum_weights=self._cum_weights)[0]
        account, assoc_id = self.rng.choice(person.accounts)
        return Submitter(person, account, assoc_id)

    def iter_jobs(self) -> Iterator[tuple[Row, list[Row]]]:
        """Every job row with its steps, in submit order (and so in job_db_inx order)."""
        rng, now = self.rng, self.cluster.now
        body, tail = self._plans()
        body_end = now - 3600
        times = sorted(rng.randint(self.cluster.window_start, body_end) for _ in body)
        singles = [i for i, (kind, _rows) in enumerate(body) if kind == "single"]
        outcomes = tuple(OUTCOME_WEIGHTS)[1:]  # every way to end but COMPLETED
        # Small demos still show every outcome: give each one to a random single job of the first 80 %.
        early = singles[: max(len(outcomes), int(len(singles) * 0.8))]
        forced = dict(zip(rng.sample(early, min(len(outcomes), len(early))), outcomes, strict=False))
        old_assoc_users = [person for person in self.cluster.users if person.old_assocs]
        plans = [
            (kind, rows, submit, forced.get(position))
            for position, ((kind, rows), submit) in enumerate(zip(body, times, strict=True))
        ]
        for kind, rows in tail:
            submit = now - rng.randint(60, 12 * 3600) if kind == "pending" else now - rng.randint(600, 2 * DAY)
            plans.append((kind, rows, submit, None))
        for kind, rows, submit, outcome in plans:
            for job, steps in self._kind(kind, rows, submit, outcome, old_assoc_users):
                self.states[decode_state(job["state"]).name] += 1
                yield job, steps

    def _kind(
        self, kind: str, rows: int, submit: int, outcome: str | None, old_assoc_users: list[DemoUser]
    ) -> Iterator[tuple[Row, list[Row]]]:
        rng = self.rng
        who = self._pick_user()
        # Jobs of the first half of the window sometimes ran under associations deleted since.
        if (
            old_assoc_users
            and submit < self.cluster.window_start + self.cluster.days * DAY // 2
            and rng.random() < 0.05
        ):
            person = rng.choice(old_assoc_users)
            account, assoc_id, _removed = person.old_assocs[0]
            who = Submitter(person, account, assoc_id)
        res = self.jobs.resources(who.person)
        name = rng.choice(
            ("run_md", "train" if res.gpus_per_node else "sim", "preprocess", "analysis", "align", "lammps")
        )
        if kind == "single":
            if rng.random() < 0.03 and outcome is None:
                res.timelimit = 60  # as the salloc line says
                yield self.jobs.job(
                    who,
                    submit,
                    res,
                    outcome="COMPLETED",
                    name="interactive",
                    submit_line=f"salloc --account={who.account} --time=01:00:00",
                )
            else:
                if res.partition != "gpu" and outcome == "PREEMPTED":
                    res = self.jobs.resources(who.person, partition="gpu")
                yield self.jobs.job(
                    who,
                    submit,
                    res,
                    outcome=outcome or self.jobs.outcome(),
                    name=name,
                    must_end=outcome is not None,
                )
        elif kind == "pending":
            yield self.jobs.job(who, submit, res, outcome="COMPLETED", name=name, force_pending=True)
        elif kind == "running":
            if not self._unlimited_shown:
                # One long-QOS job without a time limit (timelimit INFINITE) is always running.
                res.timelimit, res.qos, self._unlimited_shown = INFINITE, 3, True
            yield self.jobs.job(who, submit, res, outcome="COMPLETED", name=name, force_running=True)
        elif kind == "array":
            yield from self._array(who, submit, res, rows)
        elif kind == "array_pending":
            yield from self._array(who, submit, res, rows - 1, pending_tasks=rng.randint(5, 40))
        elif kind == "requeue":
            line = self.jobs.submit_line(res, who.account, name, extra="--requeue")
            job_id = self.jobs.new_job_id()
            first, steps = self.jobs.job(
                who,
                submit,
                res,
                outcome="REQUEUED",
                name=name,
                id_job=job_id,
                submit_line=line,
                must_end=True,
            )
            first.update(state=REQUEUE, exit_code=0)  # slurmdbd closes the old record with the bare flag
            yield first, steps
            # The requeued job is a new record: same id_job, a later time_submit.
            resubmit = max(first["time_end"], first["time_start"], submit) + rng.randint(1, 120)
            yield self.jobs.job(
                who,
                resubmit,
                res,
                outcome=self._outcome_not_pending(),
                name=name,
                id_job=job_id,
                submit_line=line,
            )
        elif kind == "resize":
            job_id = self.jobs.new_job_id()
            first, steps = self.jobs.job(who, submit, res, outcome="RESIZING", name=name, id_job=job_id, must_end=True)
            first["state"] = RESIZING
            yield first, [step for step in steps if step["id_step"] == -4]
            resized = max(first["time_end"], first["time_start"], submit) + 1
            yield self.jobs.job(who, resized, res, outcome="COMPLETED", name=name, id_job=job_id)
        elif kind == "revoked":
            job, _steps = self.jobs.job(who, submit, res, outcome="CANCELLED_PENDING", name=name, must_end=True)
            job.update(state=REVOKED, kill_requid=None)  # a federation sibling that ran elsewhere
            yield job, []
        elif kind == "het":
            leader = self.jobs.new_job_id(2)
            outcome = self._outcome_not_pending()
            yield self.jobs.job(
                who,
                submit,
                res,
                outcome=outcome,
                name=name,
                id_job=leader,
                het_job_id=leader,
                het_job_offset=0,
            )
            gpu_res = self.jobs.resources(who.person, partition="gpu")
            job, steps = self.jobs.job(
                who,
                submit,
                gpu_res,
                outcome=outcome,
                name=name,
                id_job=leader + 1,
                het_job_id=leader,
                het_job_offset=1,
            )
            yield job, [step for step in steps if step["id_step"] != -5]  # the batch script runs in component 0

    def _outcome_not_pending(self) -> str:
        outcome = self.jobs.outcome()
        return "COMPLETED" if outcome in ("CANCELLED_PENDING", "DEADLINE") else outcome

    def _array(
        self,
        who: Submitter,
        submit: int,
        res: Resources,
        tasks: int,
        *,
        pending_tasks: int = 0,
    ) -> Iterator[tuple[Row, list[Row]]]:
        rng = self.rng
        total = tasks + pending_tasks
        throttle = rng.choice((0, 0, 4, 10))
        spec = f"0-{total - 1}" + (f"%{throttle}" if throttle else "")
        line = self.jobs.submit_line(res, who.account, "sweep", array=spec)
        master = self.jobs.new_job_id(total + 1)
        for index in range(tasks):
            # The last task to start runs under the master id; the others get their own ids.
            task_id = master if index == total - 1 else master + 1 + index
            outcome = "COMPLETED" if rng.random() < 0.9 else rng.choice(("FAILED", "OUT_OF_MEMORY", "TIMEOUT"))
            yield self.jobs.job(
                who,
                submit,
                res,
                outcome=outcome,
                name="sweep",
                id_job=task_id,
                submit_line=line,
                force_running=bool(pending_tasks) and index >= tasks - 1,
                id_array_job=master,
                id_array_task=index,
            )
        if pending_tasks:
            # The meta record of the tasks not started yet: hex bitmask as slurmctld sends it.
            mask = sum(1 << i for i in range(tasks, total))
            job, _steps = self.jobs.job(
                who,
                submit,
                res,
                outcome="COMPLETED",
                name="sweep",
                id_job=master,
                submit_line=line,
                force_pending=True,
                id_array_job=master,
                id_array_task=NO_VAL,
                array_task_str=f"0x{mask:X}",
                array_max_tasks=throttle,
                array_task_pending=pending_tasks,
            )
            yield job, []
