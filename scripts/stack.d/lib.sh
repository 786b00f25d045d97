# shellcheck shell=bash
# Common helpers for scripts/stack: paths, secrets, process bookkeeping, waits.
# Sourced by scripts/stack; expects REPO and STACK_D to be set.

S=${PORTAL_STACK_DIR:-/tmp/userportal-stack}
R=$S/run        # pid files, sockets (mode 1777: daemons run as mysql, slurm, munge, www-data)
L=$S/log        # logs (mode 1777)
D=$S/data       # data directories of every service
E=$S/etc        # generated configs
SEC=$S/secrets  # generated passwords and keys (root only; portal.env carries what the portal needs)
PORTAL_VENV=${PORTAL_VENV:-$REPO/.venv}
STACK_VENV=$S/venv            # stack tools: aiosmtpd (pyenv or Debian python, whichever python3 is)
APACHE_VENV=$S/venv-apache    # made by Debian's /usr/bin/python3: mod_wsgi embeds 3.11.2
SYS_PY=/usr/bin/python3
CLUSTER=testcluster
STACK_NODES="cpu01 gpu01"   # the Slurm nodes (slurm.conf); all of them are this machine

# Ports (all on 127.0.0.1)
P_MARIADB_PRIVATE=3407
P_SLURMCTLD=6817
P_SLURMD_GPU=6818
P_SLURMDBD=6819
P_SLURMRESTD=6820
P_SLURMD_CPU=6821
P_PROMETHEUS=9090
P_REDIS_PRIVATE=6380
P_POSTGRES_PRIVATE=5433
P_SSH_NODE=2222
P_SSH_NODE2=2224   # the job queue's second GPU node (gpu02): the same machine, its own sshd
P_SSH_JUMP=2223
P_SSH_LXC=2225       # the disposable LXC node's sshd (lxc.sh)
P_LDAP=3389
P_OIDC=3000
P_SMTP=8025
P_APACHE=8080
P_LIBVIRT_EXPORTER=9177
P_NODE_EXPORTER=9110   # Debian's prometheus-node-exporter (not 9100: a machine may run its own there)
P_JOB_EXPORTER=9797    # job_exporter.py, the live stand-in for slurm-job-exporter (its own port is 9798)

# Unix and Slurm users of the stack (name:uid). dave has no Slurm association on purpose.
STACK_USERS="alice:5001 bob:5002 carol:5003 dave:5004 staffer:5005 jobqueue:5006"
PEOPLE="alice bob carol dave staffer"
# Their Unix passwords (pam_unix: the portal's PAM sign-in), other than their LDAP/OIDC ones (<user>-pw)
# so a test knows which backend accepted it: alice -> alice-unix-pw (docs/stack.md)
unix_password() { printf '%s-unix-pw' "$1"; }

export SLURM_CONF=$E/slurm/slurm.conf

# ------------------------------------------------------------------ output
if [ -t 1 ]; then C_G=$'\e[32m' C_R=$'\e[31m' C_Y=$'\e[33m' C_0=$'\e[0m'; else C_G='' C_R='' C_Y='' C_0=''; fi
log()  { printf '%s\n' "$*"; }
warn() { printf '%sWARNING%s %s\n' "$C_Y" "$C_0" "$*" >&2; }
die()  { printf '%sERROR%s %s\n' "$C_R" "$C_0" "$*" >&2; exit 1; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
# took <name> <t0>: one timing line, also appended to $L/timings.log
took() {
  local s; s=$(since "$2")
  printf '  %-14s ready in %5ss\n' "$1" "$s"
  printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$1" "$s" >> "$L/timings.log" 2>/dev/null || true
}

# tail_log <file...>: last lines of logs, for failure messages
tail_log() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    printf -- '--- last lines of %s ---\n' "$f" >&2
    tail -n 25 "$f" >&2 || true
  done
}

# wait_for <timeout_s> <log-or-empty> <description> <cmd...>
# Polls cmd every 0.1 s; on timeout prints the log tail and fails.
wait_for() {
  local timeout=$1 logf=$2 desc=$3; shift 3
  local end; end=$(( $(date +%s) + timeout ))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ "$(date +%s)" -ge "$end" ]; then
      printf '%sTIMEOUT%s after %ss waiting for %s\n' "$C_R" "$C_0" "$timeout" "$desc" >&2
      # shellcheck disable=SC2086
      [ -n "$logf" ] && tail_log $logf
      return 1
    fi
    sleep 0.1
  done
}

# wait_svc <timeout_s> <name> <log> <description> <cmd...>: wait_for that gives up at once when
# the process recorded for <name> has died (e.g. a daemon that failed on its config)
wait_svc() {
  local timeout=$1 name=$2 logf=$3 desc=$4; shift 4
  local end; end=$(( $(date +%s) + timeout ))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! svc_up "$name"; then
      printf '%sFAILED%s %s exited while waiting for %s\n' "$C_R" "$C_0" "$name" "$desc" >&2
      # shellcheck disable=SC2086
      [ -n "$logf" ] && tail_log $logf
      return 1
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
      printf '%sTIMEOUT%s after %ss waiting for %s\n' "$C_R" "$C_0" "$timeout" "$desc" >&2
      # shellcheck disable=SC2086
      [ -n "$logf" ] && tail_log $logf
      return 1
    fi
    sleep 0.1
  done
}

# ------------------------------------------------------------------ secrets
gen_secret() { od -An -tx1 -N18 /dev/urandom | tr -d ' \n'; }
# secret <name>: the value of $SEC/<name>, created on first use
secret() {
  local f=$SEC/$1
  if [ ! -s "$f" ]; then (umask 077; gen_secret > "$f"); fi
  cat "$f"
}

# ------------------------------------------------------------------ processes
# A process counts as running when /proc/PID/stat exists, its state is not Z (pitfall P1:
# PID 1 here reaps orphans only every ~2 s) and its start time is the one recorded when we
# started it (so a pid file left by a crash never makes us signal an unrelated process).
proc_state() { sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]) .*/\1/' "/proc/$1/stat" 2>/dev/null || true; }
# field 22 (starttime); after "(comm) " the state is field 3, so starttime is the 20th word
proc_start() { { sed -E 's/^[0-9]+ \(.*\) (.*)$/\1/' "/proc/$1/stat" 2>/dev/null || true; } | awk '{print $20}'; }
pid_alive() {
  local st; st=$(proc_state "$1") || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pidfile() { printf '%s/%s.pid' "$R" "$1"; }

# record <name> [pid]: remember the pid (from the arg or the daemon's pid file) and its start time
record() {
  local name=$1 pid=${2:-} f; f=$(pidfile "$1")
  [ -n "$pid" ] || pid=$(tr -dc 0-9 < "$f" 2>/dev/null || true)
  [ -n "$pid" ] || return 1
  printf '%s\n' "$pid" > "$f.tmp" && mv -f "$f.tmp" "$f"
  proc_start "$pid" > "$R/$name.start"
}

# svc_pid <name>: prints the pid and succeeds when the service we started is running
svc_pid() {
  local name=$1 f pid st; f=$(pidfile "$1")
  [ -s "$f" ] || return 1
  pid=$(tr -dc 0-9 < "$f" 2>/dev/null || true)
  [ -n "$pid" ] || return 1
  pid_alive "$pid" || return 1
  if [ -s "$R/$name.start" ]; then
    st=$(cat "$R/$name.start")
    [ "$(proc_start "$pid")" = "$st" ] || return 1
  fi
  printf '%s' "$pid"
}
svc_up() { svc_pid "$1" >/dev/null; }

# session_members <pid>: live processes whose session or process group is <pid> (the children a
# daemon leaves behind: Apache workers, the mod_wsgi daemon, Celery's pool). Linux never hands out
# a pid that is still some live process's session or group id, so these are ours.
session_members() {
  # shellcheck disable=SC2016
  # (cat fails when a process exits between the glob and the read: that must not fail us)
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v leader="$1" '{
    r = $0; sub(/^.*\) /, "", r); split(r, a, " ")
    # a[1] state, a[2] ppid, a[3] pgrp, a[4] session
    if ($1 != leader && a[1] != "Z" && (a[3] == leader || a[4] == leader)) print $1
  }'
}

# kill_session <pid>: TERM then KILL what is left of a service's session
kill_session() {
  local leader=$1 pids i
  pids=$(session_members "$leader")
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    pids=$(session_members "$leader"); [ -n "$pids" ] || return 0
    sleep 0.05
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

# cleanup_stale <name>: before starting a service that is not running, remove what a crash left:
# the children of its recorded pid, its pid file
cleanup_stale() {
  local name=$1 f pid; f=$(pidfile "$1")
  svc_up "$name" && return 0
  if [ -s "$f" ]; then
    pid=$(tr -dc 0-9 < "$f" 2>/dev/null || true)
    # (never for slurmd: its slurmstepd processes carry running jobs, and a new slurmd adopts them)
    if [ -n "$pid" ] && [[ $name != slurmd-* ]]; then
      if [ -n "$(session_members "$pid")" ]; then
        warn "$name: stopping processes left by its crashed instance (session $pid)"
        kill_session "$pid"
      fi
    fi
  fi
  rm -f "$f" "$R/$name.start"
}

# stop_svc <name> [timeout_s]: TERM the recorded pid, wait, KILL after the timeout
stop_svc() {
  local name=$1 timeout=${2:-15} pid t0 i n
  t0=$(now)
  if pid=$(svc_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    n=$(( timeout * 20 ))
    for ((i = 0; i < n; i++)); do pid_alive "$pid" || break; sleep 0.05; done
    if pid_alive "$pid"; then
      warn "$name (pid $pid) still running after ${timeout}s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 40; i++)); do pid_alive "$pid" || break; sleep 0.05; done
    fi
    kill_session "$pid"
    printf '  stopped %-14s (pid %s) in %ss\n' "$name" "$pid" "$(since "$t0")"
  else
    cleanup_stale "$name"
  fi
  rm -f "$(pidfile "$name")" "$R/$name.start"
}

# bg_start <name> <log> <cmd...>: start a foreground program detached, record its pid
bg_start() {
  local name=$1 logf=$2; shift 2
  setsid "$@" >> "$logf" 2>&1 < /dev/null &
  record "$name" "$!"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# who listens on a port (pid), for status and conflict messages
port_owner() { { ss -Hltnp "sport = :$1" 2>/dev/null || true; } | { grep -o 'pid=[0-9]*' || true; } | head -1 | cut -d= -f2; }

# check_port_free <port> <service>: fail early with a clear message when something else has the port
check_port_free() {
  local p=$1 name=$2 owner
  if port_open "$p"; then
    owner=$(port_owner "$p")
    die "port 127.0.0.1:$p needed by $name is taken by pid ${owner:-?} ($(tr '\0' ' ' < "/proc/${owner:-0}/cmdline" 2>/dev/null | cut -c1-80))"
  fi
}

# ------------------------------------------------------------------ misc
as_user() { local u=$1; shift; runuser -u "$u" -- env SLURM_CONF="$SLURM_CONF" "$@"; }
have() { command -v "$1" >/dev/null 2>&1; }

# check_repo_readable: Apache's WSGI daemon (www-data) and the Slurm prolog (slurm) run the portal's
# code from $REPO, so every user must be able to read it: a clone under /root (mode 700) is not.
check_repo_readable() {
  local u
  for u in www-data slurm; do
    id "$u" >/dev/null 2>&1 || continue
    runuser -u "$u" -- test -r "$REPO/manage.py" \
      || die "user $u cannot read $REPO/manage.py: put the clone where every user can read it (not under /root)"
  done
}
