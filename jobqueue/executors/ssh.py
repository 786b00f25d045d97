"""The ssh executor: a job runs detached on a GPU node reached through a jump host (paramiko).

Layout on the node: JOBQUEUE_REMOTE_DIR/<job_id>/ (mode 0700) holds the control files, ctl.sh
(start, poll, cancel), run.sh (runs the launcher under ``timeout``, records its pid and exit code)
and launch.sh (the sandbox, jobqueue.executors.sandbox), the output stdout.txt and stderr.txt, and
work/ with code.py: the only directory the sandboxed job sees. Remote commands are argv lists
joined with shlex, never strings pasted together. Connections are kept per node, with
keep-alives; a dropped one is rebuilt with exponential back-off, and the job, detached, does not
notice.
"""

from __future__ import annotations

import logging
import posixpath
import shlex
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paramiko
from django.conf import settings

from jobqueue.executors import Executor, ExecutorError, ExecutorUnavailable, Output, Poll, run_script, sandbox

if TYPE_CHECKING:
    from jobqueue.models import Job

logger = logging.getLogger(__name__)

CTL_SCRIPT = """#!/bin/sh
# Written by the portal's job queue: start, poll or cancel the job in this directory.
cd "$(dirname "$0")" || { echo lost; exit 0; }
case "$1" in
start)
  if [ ! -d started.lock ] && ! problem=$(sh launch.sh probe 2>&1); then
    echo "no-sandbox $problem" | tr '\n' ' '; echo
    exit 0
  fi
  if mkdir started.lock 2>/dev/null; then
    setsid nohup sh run.sh > /dev/null 2>&1 < /dev/null &
    echo started
  else
    echo already
  fi ;;
poll)
  if [ -f exit_code ]; then echo "done $(cat exit_code)"
  elif [ -f pid ] && kill -0 "$(cat pid)" 2>/dev/null; then echo running
  elif [ -f exit_code ]; then echo "done $(cat exit_code)"
  elif [ -d started.lock ] && [ ! -f pid ]; then echo starting
  else echo lost
  fi ;;
cancel)
  touch cancelled
  if [ -f child ] && [ ! -f exit_code ]; then
    kill -TERM "$(cat child)" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -f exit_code ] && break; sleep 1; done
    kill -KILL -- "-$(cat child)" 2>/dev/null
  fi
  echo cancelled ;;
esac
"""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str


def parse_endpoint(value: str, *, default_user: str, default_port: int = 22) -> Endpoint:
    """``[user@]host[:port]`` (IPv6 in brackets) as an Endpoint."""
    user, _at, rest = value.rpartition("@")
    host, port = rest, default_port
    if rest.startswith("["):
        host, _b, tail = rest[1:].partition("]")
        if tail.startswith(":"):
            port = int(tail[1:])
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
        port = int(port_text)
    return Endpoint(host=host, port=port, user=user or default_user)


def configured_nodes() -> dict[str, Endpoint]:
    """JOBQUEUE_NODES (``name=host[:port]``) by name, in the configured order."""
    nodes: dict[str, Endpoint] = {}
    for item in settings.JOBQUEUE_NODES:
        name, _eq, address = item.partition("=")
        nodes[name.strip()] = parse_endpoint(address.strip() or name.strip(), default_user=settings.JOBQUEUE_SSH_USER)
    return nodes


def _new_client() -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    if settings.JOBQUEUE_SSH_KNOWN_HOSTS:
        client.load_host_keys(settings.JOBQUEUE_SSH_KNOWN_HOSTS)
    else:
        client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())  # never trust an unknown host key
    return client


def _connect_kwargs(endpoint: Endpoint) -> dict[str, object]:
    timeout = settings.JOBQUEUE_SSH_TIMEOUT
    kwargs: dict[str, object] = {
        "hostname": endpoint.host,
        "port": endpoint.port,
        "username": endpoint.user,
        "timeout": timeout,
        "banner_timeout": timeout,
        "auth_timeout": timeout,
        "allow_agent": False,
        "look_for_keys": not settings.JOBQUEUE_SSH_KEY,
    }
    if settings.JOBQUEUE_SSH_KEY:
        kwargs["key_filename"] = settings.JOBQUEUE_SSH_KEY
    return kwargs


class NodeConnection:
    """One SSH connection to a node (through the jump host), rebuilt when it drops."""

    def __init__(self, node: Endpoint, jump: Endpoint | None) -> None:
        self.node = node
        self.jump = jump
        self._jump_client: paramiko.SSHClient | None = None
        self._client: paramiko.SSHClient | None = None

    def is_active(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    def close(self) -> None:
        for client in (self._client, self._jump_client):
            if client is not None:
                try:
                    client.close()
                except (OSError, EOFError, paramiko.SSHException):
                    pass  # the transport already died (e.g. the jump host restarted): nothing to close
        self._client = self._jump_client = None

    def _connect_once(self) -> None:
        self.close()
        keepalive = settings.JOBQUEUE_SSH_KEEPALIVE
        sock = None
        if self.jump is not None:
            jump_client = _new_client()
            jump_client.connect(**_connect_kwargs(self.jump))
            self._jump_client = jump_client
            jump_transport = jump_client.get_transport()
            assert jump_transport is not None
            if keepalive:
                jump_transport.set_keepalive(keepalive)
            sock = jump_transport.open_channel(
                "direct-tcpip",
                (self.node.host, self.node.port),
                ("127.0.0.1", 0),
                timeout=settings.JOBQUEUE_SSH_TIMEOUT,
            )
        client = _new_client()
        client.connect(sock=sock, **_connect_kwargs(self.node))
        transport = client.get_transport()
        if keepalive and transport is not None:
            transport.set_keepalive(keepalive)
        self._client = client

    def connect(self) -> None:
        """Connect, retrying JOBQUEUE_SSH_RETRIES times with exponential back-off (1, 2, 4 … s)."""
        attempts = settings.JOBQUEUE_SSH_RETRIES + 1
        for attempt in range(attempts):
            try:
                self._connect_once()
                return
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.close()
                if isinstance(exc, paramiko.BadHostKeyException | paramiko.AuthenticationException):
                    raise ExecutorUnavailable(f"ssh to {self.node.host}:{self.node.port}: {exc}") from exc
                if attempt + 1 >= attempts:
                    raise ExecutorUnavailable(
                        f"ssh to {self.node.host}:{self.node.port} failed {attempts} times: {exc}"
                    ) from exc
                delay = min(2**attempt, 30)
                logger.warning("ssh to %s failed (%s); retrying in %s s", self.node.host, exc, delay)
                time.sleep(delay)

    def _ensure(self) -> paramiko.SSHClient:
        if not self.is_active():
            self.connect()
        assert self._client is not None
        return self._client

    def run(self, argv: list[str], *, timeout: float | None = None) -> tuple[int, str, str]:
        """Run `argv` on the node; reconnect once if the connection dropped in the meantime."""
        command = shlex.join(argv)
        for attempt in (1, 2):
            client = self._ensure()
            try:
                _stdin, stdout, stderr = client.exec_command(command, timeout=timeout or settings.JOBQUEUE_SSH_TIMEOUT)
                out = stdout.read().decode("utf-8", "replace")
                err = stderr.read().decode("utf-8", "replace")
                return stdout.channel.recv_exit_status(), out, err
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.close()
                if attempt == 2:
                    raise ExecutorUnavailable(f"ssh command on {self.node.host} failed: {exc}") from exc
        raise AssertionError("unreachable")

    def put(self, path: str, data: str, *, mode: int = 0o644) -> None:
        try:
            with self._ensure().open_sftp() as sftp, sftp.open(path, "w") as handle:
                handle.write(data.encode("utf-8"))
                handle.chmod(mode)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise ExecutorUnavailable(f"upload to {self.node.host}:{path} failed: {exc}") from exc

    def get_tail(self, path: str, max_bytes: int) -> str:
        """The last `max_bytes` of a remote file ('' when it does not exist)."""
        try:
            with self._ensure().open_sftp() as sftp:
                try:
                    size = sftp.stat(path).st_size or 0
                except FileNotFoundError:
                    return ""
                with sftp.open(path, "r") as handle:
                    handle.seek(max(0, size - max_bytes))
                    return handle.read().decode("utf-8", "replace")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise ExecutorUnavailable(f"download from {self.node.host}:{path} failed: {exc}") from exc


_connections: dict[tuple[str, Endpoint, Endpoint | None], NodeConnection] = {}
_lock = threading.Lock()


def connection(name: str) -> NodeConnection:
    """The kept connection to node `name` (one per process and settings)."""
    nodes = configured_nodes()
    if name not in nodes:
        raise ExecutorError(f"node {name!r} is not in JOBQUEUE_NODES")
    jump = (
        parse_endpoint(settings.JOBQUEUE_SSH_JUMP, default_user=settings.JOBQUEUE_SSH_USER)
        if settings.JOBQUEUE_SSH_JUMP
        else None
    )
    key = (name, nodes[name], jump)
    with _lock:
        if key not in _connections:
            _connections[key] = NodeConnection(nodes[name], jump)
        return _connections[key]


def close_all() -> None:
    with _lock:
        for conn in _connections.values():
            conn.close()
        _connections.clear()


class SSHExecutor(Executor):
    name = "ssh"
    uses_nodes = True

    def _dir(self, job: Job) -> str:
        return posixpath.join(settings.JOBQUEUE_REMOTE_DIR, job.job_id)

    def start(self, job: Job, *, node: str) -> str:
        launch = sandbox.launcher()  # refuses to run without a sandbox on nodes that are not disposable
        conn = connection(node)
        directory = self._dir(job)
        work = posixpath.join(directory, "work")
        status, _out, err = conn.run(["mkdir", "-p", "-m", "700", directory, work])
        if status != 0:
            raise ExecutorError(f"cannot create {directory} on {node}: {err.strip()}")
        conn.put(posixpath.join(work, "code.py"), job.code)
        conn.put(posixpath.join(directory, "launch.sh"), launch, mode=0o755)
        conn.put(posixpath.join(directory, "run.sh"), run_script(job, command="sh launch.sh run"), mode=0o755)
        conn.put(posixpath.join(directory, "ctl.sh"), CTL_SCRIPT, mode=0o755)
        status, out, err = conn.run(["sh", posixpath.join(directory, "ctl.sh"), "start"])
        answer = out.strip()
        if status == 0 and answer.startswith("no-sandbox"):
            raise ExecutorError(
                f"refusing to run the job: no working sandbox on {node} ({answer.removeprefix('no-sandbox').strip()}); "
                "install bubblewrap there (with unprivileged user namespaces), or declare the nodes disposable"
            )
        if status != 0 or answer not in ("started", "already"):
            raise ExecutorError(f"cannot start the job on {node}: {(err or out).strip()}")
        return directory

    def poll(self, job: Job) -> Poll:
        status, out, err = connection(job.node).run(["sh", posixpath.join(job.remote_id, "ctl.sh"), "poll"])
        if status == 127 or "No such file" in err:
            return Poll("lost", reason=f"the job's directory is gone from {job.node}")
        word, _sp, rest = out.strip().partition(" ")
        if word == "done":
            try:
                return Poll("done", exit_code=int(rest))
            except ValueError:
                return Poll("done", exit_code=None, reason=f"unreadable exit code {rest!r}")
        if word in ("running", "starting"):
            return Poll("running")
        return Poll("lost", reason=f"the job's process on {job.node} ended without an exit code")

    def collect(self, job: Job) -> Output:
        conn = connection(job.node)
        limit = settings.JOBQUEUE_MAX_OUTPUT_BYTES
        return Output(
            stdout=conn.get_tail(posixpath.join(job.remote_id, "stdout.txt"), limit),
            stderr=conn.get_tail(posixpath.join(job.remote_id, "stderr.txt"), limit),
        )

    def cancel(self, job: Job) -> None:
        if job.remote_id:
            connection(job.node).run(["sh", posixpath.join(job.remote_id, "ctl.sh"), "cancel"], timeout=30)

    def release(self, job: Job) -> None:
        conn = connection(job.node)
        if job.remote_id.startswith(settings.JOBQUEUE_REMOTE_DIR.rstrip("/") + "/"):
            conn.run(["rm", "-rf", "--", job.remote_id])
        if settings.JOBQUEUE_LXC_RESTART:
            self.restart_container(job.node)

    def restart_container(self, node: str) -> None:
        """Restart the node's LXC container from the jump host (JOBQUEUE_LXC_COMMAND), then wait."""
        container = settings.JOBQUEUE_LXC_PREFIX + node
        argv = [part.format(container=container) for part in shlex.split(settings.JOBQUEUE_LXC_COMMAND)]
        jump = connection(node).jump
        host = NodeConnection(jump, None) if jump is not None else connection(node)
        try:
            status, _out, err = host.run(argv, timeout=120)
        finally:
            if host is not connection(node):
                host.close()
        if status != 0:  # the node was not reset: the caller keeps it out of service
            raise ExecutorError(f"restarting container {container} failed: {err.strip() or f'exit status {status}'}")
        connection(node).close()  # the node's sshd restarted with its container
        time.sleep(settings.JOBQUEUE_LXC_WAIT)
