# shellcheck shell=bash
# status: one line per service. A service counts as up when the pid we recorded is alive (not a
# zombie, same start time) and its port answers; the machine's own MariaDB/PostgreSQL/Redis when they answer.

# status_line <name> <state> <detail>
status_line() {
  local color=$C_G
  case $2 in running|up) ;; skipped) color=$C_Y ;; *) color=$C_R ;; esac
  printf '  %-15s %s%-8s%s %s\n' "$1" "$color" "$2" "$C_0" "$3"
}

# svc_status <name> <port or ''>: prints a line, returns 0 when up
svc_status() {
  local name=$1 port=$2 pid
  if pid=$(svc_pid "$name"); then
    if [ -z "$port" ] || port_open "$port"; then
      status_line "$name" running "pid $pid${port:+  127.0.0.1:$port}"; return 0
    fi
    status_line "$name" down "pid $pid alive but 127.0.0.1:$port does not answer"; return 1
  fi
  status_line "$name" stopped "${port:+127.0.0.1:$port}"; return 1
}

# celery/apache are skipped (not failed) while the portal cannot run them yet
celery_state() {
  if [ -e "$D/celery.enabled" ]; then echo enabled
  elif celery_importable; then echo possible
  else echo impossible; fi
}
apache_state() {
  if [ -e "$D/apache.enabled" ]; then echo enabled
  elif apache_possible; then echo possible
  else echo impossible; fi
}

# print_status [quiet]: exit 0 only when every service is up
print_status() {
  local quiet=${1:-} bad=0 out
  out=$(
    bad=0
    [ -d "$S" ] || { status_line stack stopped "no state dir $S"; exit 1; }
    if [ "$(db_mode)" = system ]; then
      if mariadb -uroot -e 'select 1' >/dev/null 2>&1; then status_line mariadb up "the machine's server  127.0.0.1:$(db_port)"
      else status_line mariadb down "the machine's server does not answer"; bad=1; fi
    else
      svc_status mariadb "$P_MARIADB_PRIVATE" || bad=1
    fi
    if [ "$(pg_mode)" = system ]; then
      if pg_login "$P_POSTGRES_SYSTEM"; then status_line postgres up "the machine's server  127.0.0.1:$P_POSTGRES_SYSTEM"
      else status_line postgres down "the machine's server on $P_POSTGRES_SYSTEM does not answer"; bad=1; fi
    else
      svc_status postgres "$P_POSTGRES_PRIVATE" || bad=1
    fi
    if pid=$(svc_pid munged) && [ -S "$MUNGE_SOCKET" ]; then status_line munged running "pid $pid  $MUNGE_SOCKET"
    else status_line munged stopped "$MUNGE_SOCKET"; bad=1; fi
    svc_status slurmdbd "$P_SLURMDBD" || bad=1
    svc_status slurmctld "$P_SLURMCTLD" || bad=1
    svc_status slurmd-gpu01 "$P_SLURMD_GPU" || bad=1
    svc_status slurmd-cpu01 "$P_SLURMD_CPU" || bad=1
    svc_status slurmrestd "$P_SLURMRESTD" || bad=1
    svc_status prometheus "$P_PROMETHEUS" || bad=1
    node_exporter_status || bad=1
    job_exporter_status || bad=1
    libvirt_status || bad=1
    if [ "$(redis_mode)" = system ]; then
      if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then status_line redis up "the machine's server  127.0.0.1:6379 db $REDIS_DB"
      else status_line redis down "the machine's server on 6379 does not answer"; bad=1; fi
    else
      svc_status redis "$P_REDIS_PRIVATE" || bad=1
    fi
    case $(celery_state) in
      enabled) svc_status celery-worker "" || bad=1; svc_status celery-beat "" || bad=1 ;;
      possible) status_line celery-worker stopped "(userportal.celery imports: run scripts/stack up)"; bad=1 ;;
      *) status_line celery-worker skipped "WARNING: 'import userportal.celery' fails in $PORTAL_VENV" ;;
    esac
    svc_status "sshd-$P_SSH_NODE" "$P_SSH_NODE" || bad=1
    svc_status "sshd-$P_SSH_NODE2" "$P_SSH_NODE2" || bad=1
    svc_status "sshd-$P_SSH_JUMP" "$P_SSH_JUMP" || bad=1
    svc_status slapd "$P_LDAP" || bad=1
    svc_status oidc "$P_OIDC" || bad=1
    svc_status aiosmtpd "$P_SMTP" || bad=1
    case $(apache_state) in
      enabled) svc_status apache "$P_APACHE" || bad=1 ;;
      possible) status_line apache stopped "(the portal can run now: run scripts/stack up)"; bad=1 ;;
      *) status_line apache skipped "WARNING: no requirements.txt / Apache venv / userportal/wsgi.py" ;;
    esac
    exit "$bad"
  ) || bad=1
  if [ "$quiet" != quiet ]; then
    printf 'stack %s (%s)\n' "$S" "$([ "$bad" = 0 ] && echo 'all up' || echo 'NOT all up')"
    printf '%s\n' "$out"
  fi
  return "$bad"
}

all_up() { [ -d "$S" ] && [ -e "$D/.db-initialized" ] && print_status quiet; }
