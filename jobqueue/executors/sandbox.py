"""The launcher a job runs under on a GPU node: a bubblewrap sandbox, or nothing on disposable nodes.

The ssh executor writes ``launch.sh`` next to the job's control files; ``run.sh`` runs it under
``timeout``. With ``JOBQUEUE_SANDBOX=bwrap`` (the default) it execs bubblewrap (Debian package
``bubblewrap``; unprivileged user namespaces, no setuid) so that the job:

- sees only its own ``work/`` directory (as ``/job``, its home and working directory), read-only
  system directories (``/usr`` and the merged-/usr links, a few files of ``/etc``, ``/sys``,
  ``JOBQUEUE_SANDBOX_PATHS``), GPU devices, a private ``/tmp`` and ``/dev``: not the ssh user's
  home, not ``/etc/shadow``, not the other jobs' directories, not its own control files
  (``exit_code``, ``pid``, ``ctl.sh``…), which stay outside ``work/``;
- has no network, no IPC, its own hostname, no capabilities, no further user namespaces, a new
  session (no terminal to inject into);
- lives in its own pid namespace: bubblewrap's init is its pid 1, and ``--die-with-parent``
  kills it when bubblewrap's monitor dies. So when ``timeout`` (the time limit) or ``ctl.sh
  cancel`` signals bubblewrap, the kernel kills every process of the job, ``setsid()`` children
  and double forks included: none can leave the namespace.

What it does not do: limit memory, CPU or GPU time beyond the time limit (use cgroups or Slurm
for that), or hide what any local account may read under ``/usr`` and ``/sys``.

``JOBQUEUE_SANDBOX=none`` runs the code directly and is only allowed on nodes declared disposable
(``JOBQUEUE_NODES_DISPOSABLE`` with ``JOBQUEUE_LXC_RESTART``: a fresh container after each job).
``launch.sh probe`` checks the sandbox works before a job starts; the executor refuses the job
when it does not.
"""

from __future__ import annotations

import shlex

from django.conf import settings

from jobqueue.executors import ExecutorError

# Files of /etc a Python job may need (the dynamic linker, names, time zone, certificates).
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
    "/etc/python3",
)

BWRAP_LAUNCHER = """#!/bin/sh
# Written by the portal's job queue: run this job's code in a bubblewrap sandbox
# (see jobqueue/executors/sandbox.py). Usage: launch.sh run | probe
cd "$(dirname "$0")" || exit 1
mode=${1:-run}
bwrap=@BWRAP@
set -- --unshare-all --die-with-parent --new-session --cap-drop ALL \\
  --ro-bind /usr /usr --ro-bind-try /sys /sys --proc /proc --dev /dev --tmpfs /tmp \\
  --bind "$PWD/work" /job --chdir /job --hostname jobqueue \\
  --clearenv --setenv HOME /job --setenv TMPDIR /tmp --setenv LANG C.UTF-8 \\
  --setenv PATH /usr/local/bin:/usr/bin:/bin
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then set -- "$@" --symlink "$(readlink "/$d")" "/$d"
  elif [ -d "/$d" ]; then set -- "$@" --ro-bind "/$d" "/$d"; fi
done
for p in @READ_ONLY@; do
  [ -e "$p" ] && set -- "$@" --ro-bind "$p" "$p"
done
for p in /dev/nvidia* /dev/nvidia-caps /dev/dri; do
  [ -e "$p" ] && set -- "$@" --dev-bind "$p" "$p"
done
for v in CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES; do
  eval "value=\\${$v-}"
  [ -n "$value" ] && set -- "$@" --setenv "$v" "$value"
done
"$bwrap" --help 2>/dev/null | grep -q -- --disable-userns && set -- "$@" --unshare-user --disable-userns
set -- "$@" --remount-ro /
if [ "$mode" = probe ]; then
  exec "$bwrap" "$@" -- true
fi
exec "$bwrap" "$@" -- @PYTHON@ code.py
"""

PLAIN_LAUNCHER = """#!/bin/sh
# Written by the portal's job queue: run this job's code directly (JOBQUEUE_SANDBOX=none: the
# nodes are disposable, a fresh container after each job). Usage: launch.sh run | probe
cd "$(dirname "$0")/work" || exit 1
[ "${1:-run}" = probe ] && exit 0
exec @PYTHON@ code.py
"""


def check_mode() -> str:
    """JOBQUEUE_SANDBOX, once it is allowed: "none" only on nodes declared disposable."""
    mode = str(settings.JOBQUEUE_SANDBOX)
    if mode == "none" and not (settings.JOBQUEUE_NODES_DISPOSABLE and settings.JOBQUEUE_LXC_RESTART):
        raise ExecutorError(
            "refusing to run a job without a sandbox: JOBQUEUE_SANDBOX=none needs disposable nodes "
            "(JOBQUEUE_NODES_DISPOSABLE=true and JOBQUEUE_LXC_RESTART=true)"
        )
    return mode


def launcher() -> str:
    """launch.sh for the configured sandbox (names and paths quoted for the shell)."""
    python = shlex.join(shlex.split(settings.JOBQUEUE_PYTHON))
    if check_mode() == "none":
        return PLAIN_LAUNCHER.replace("@PYTHON@", python)
    read_only = [*ETC_FILES, *settings.JOBQUEUE_SANDBOX_PATHS]
    return (
        BWRAP_LAUNCHER.replace("@BWRAP@", shlex.quote(settings.JOBQUEUE_SANDBOX_BWRAP))
        .replace("@READ_ONLY@", " ".join(shlex.quote(path) for path in read_only))
        .replace("@PYTHON@", python)
    )
