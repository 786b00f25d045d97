"""An in-memory executor for unit tests: jobs "run" until the test finishes them."""

from __future__ import annotations

from jobqueue.executors import Executor, ExecutorUnavailable, Output, Poll

# job_id -> {"state": ..., "exit_code": ..., "stdout": ...}; tests set what poll() answers.
REMOTE: dict[str, dict] = {}
DOWN = {"value": False}
CALLS: list[tuple[str, str]] = []


class FakeExecutor(Executor):
    name = "fake"
    uses_nodes = True

    def _check(self) -> None:
        if DOWN["value"]:
            raise ExecutorUnavailable("the fake node is down")

    def start(self, job, *, node):
        self._check()
        CALLS.append(("start", job.job_id))
        REMOTE.setdefault(job.job_id, {"state": "running", "exit_code": None, "stdout": "", "node": node})
        return f"/fake/{job.job_id}"

    def poll(self, job):
        self._check()
        remote = REMOTE[job.job_id]
        return Poll(remote["state"], exit_code=remote["exit_code"])

    def collect(self, job):
        return Output(stdout=REMOTE[job.job_id]["stdout"], stderr="")

    def cancel(self, job):
        self._check()
        CALLS.append(("cancel", job.job_id))
        REMOTE[job.job_id].update(state="done", exit_code=143)

    def release(self, job):
        CALLS.append(("release", job.job_id))


def finish(job_id: str, *, exit_code: int = 0, stdout: str = '{"accuracy": 0.9}\n') -> None:
    REMOTE[job_id].update(state="done", exit_code=exit_code, stdout=stdout)
