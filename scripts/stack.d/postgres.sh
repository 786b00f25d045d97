# shellcheck shell=bash
# PostgreSQL, for the unit tests' PostgreSQL pass only (nothing else in the stack uses it): the
# machine's server when user postgres can log in on 127.0.0.1:5432, else a private cluster under
# the state dir (initdb, 127.0.0.1:5433, trust for loopback), stopped by its pid on `down`.
# The choice is made once per state dir (data/postgres.mode), like MariaDB and Redis.
# test-db.env: the URLs scripts/test uses for its PostgreSQL and MariaDB passes.

P_POSTGRES_SYSTEM=5432
TEST_DB_ENV=$S/test-db.env

# pg_bin <program>: the newest installed server binary (Debian keeps them in /usr/lib/postgresql/N/bin)
pg_bin() {
  local d
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  printf '%s/%s' "${d:-/usr/lib/postgresql/15/bin}" "$1"
}

# pg_login <port>: user postgres can run a query over TCP on 127.0.0.1:<port> (no password prompt)
pg_login() {
  have psql || return 1
  PGCONNECT_TIMEOUT=3 psql -w -X -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1
}

pg_mode() {
  if [ -s "$D/postgres.mode" ]; then cat "$D/postgres.mode"; return; fi
  case ${PORTAL_STACK_POSTGRES:-auto} in
    system|private) echo "$PORTAL_STACK_POSTGRES"; return ;;
  esac
  if pg_login "$P_POSTGRES_SYSTEM"; then echo system; else echo private; fi
}

pg_port() { if [ "$(pg_mode)" = system ]; then echo "$P_POSTGRES_SYSTEM"; else echo "$P_POSTGRES_PRIVATE"; fi; }

start_postgres() {
  local t0 mode pgdata=$D/postgres; t0=$(now); mode=$(pg_mode)
  echo "$mode" > "$D/postgres.mode"
  if [ "$mode" = system ]; then
    pg_login "$P_POSTGRES_SYSTEM" \
      || die "this state dir uses the machine's PostgreSQL on $P_POSTGRES_SYSTEM, which does not answer (run: scripts/stack reset)"
    log "  postgres       the machine's server on 127.0.0.1:$P_POSTGRES_SYSTEM"
  elif ! svc_up postgres; then
    cleanup_stale postgres
    check_port_free "$P_POSTGRES_PRIVATE" postgres
    id postgres >/dev/null 2>&1 || die "no Unix user postgres: run scripts/stack install (Debian's postgresql package)"
    [ -x "$(pg_bin postgres)" ] || die "no PostgreSQL server binaries in /usr/lib/postgresql: run scripts/stack install"
    if [ ! -s "$pgdata/PG_VERSION" ]; then
      rm -rf "$pgdata"
      install -d -o postgres -g postgres -m 700 "$pgdata"
      # trust for loopback (TCP 127.0.0.1/::1 and the socket): a throw-away cluster for tests
      setpriv --reuid=postgres --regid=postgres --init-groups -- "$(pg_bin initdb)" -D "$pgdata" -U postgres \
        --auth-local=trust --auth-host=trust --encoding=UTF8 --locale=C.UTF-8 > "$L/postgres-initdb.log" 2>&1 \
        || { tail_log "$L/postgres-initdb.log"; die "initdb failed"; }
    fi
    install -d -o postgres -g postgres -m 755 "$R/postgres"
    # a throw-away cluster: no fsync; the socket in the state dir, TCP on 127.0.0.1 only
    bg_start postgres "$L/postgres.log" setpriv --reuid=postgres --regid=postgres --init-groups -- \
      "$(pg_bin postgres)" -D "$pgdata" -c listen_addresses=127.0.0.1 -c port="$P_POSTGRES_PRIVATE" \
      -c unix_socket_directories="$R/postgres" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
      -c max_connections=50
    wait_svc 60 postgres "$L/postgres.log" "postgres login" pg_login "$P_POSTGRES_PRIVATE" || die "postgres did not start"
  fi
  took postgres "$t0"
}

# Fast shutdown (INT): the default TERM is "smart" and waits for every client to leave.
stop_postgres() {
  [ "$(pg_mode)" = private ] || return 0
  local pid i t0; t0=$(now)
  if pid=$(svc_pid postgres); then
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do pid_alive "$pid" || break; sleep 0.05; done
    if ! pid_alive "$pid"; then
      kill_session "$pid"
      printf '  stopped %-14s (pid %s) in %ss\n' postgres "$pid" "$(since "$t0")"
    fi
  fi
  stop_svc postgres 15   # TERM/KILL if still running; else removes the pid files
}

# The URLs scripts/test uses for its PostgreSQL and MariaDB unit passes (when PORTAL_TEST_*_URL
# are not set). Root only: the private MariaDB's root password is in it.
write_test_db_env() {
  local my_url t=$TEST_DB_ENV.tmp
  if [ "$(db_mode)" = system ]; then
    my_url="mysql://root@127.0.0.1:$(db_port)/userportal"   # the machine's root, as scripts/test's default
  else
    my_url="mysql://root:$(secret mariadb_root)@127.0.0.1:$P_MARIADB_PRIVATE/userportal"
  fi
  (
    umask 077
    {
      echo "# Written by scripts/stack up: the database servers for scripts/test's unit passes."
      env_line PORTAL_TEST_POSTGRES_URL "postgres://postgres@127.0.0.1:$(pg_port)/userportal"
      env_line PORTAL_TEST_MARIADB_URL "$my_url"
    } > "$t"
  )
  mv -f "$t" "$TEST_DB_ENV"
}
