# shellcheck shell=bash
# MariaDB: the machine's own server when root can log in over its socket, else a private
# mariadbd on 127.0.0.1:3407 with its datadir under the state dir.
# The choice is made once per state dir (data/mariadb.mode) so data never silently moves.

db_mode() {
  if [ -s "$D/mariadb.mode" ]; then cat "$D/mariadb.mode"; return; fi
  case ${PORTAL_STACK_MARIADB:-auto} in
    system|private) echo "$PORTAL_STACK_MARIADB"; return ;;
  esac
  if mariadb -uroot -e 'select 1' >/dev/null 2>&1; then echo system; else echo private; fi
}

# sql_root [args...]: the mariadb client as root over the socket of the server we use
sql_root() {
  if [ "$(db_mode)" = system ]; then
    mariadb -uroot "$@"
  else
    mariadb --defaults-file="$E/mariadb/my.cnf" -uroot "$@"
  fi
}

db_port() {
  if [ "$(db_mode)" = system ]; then
    mariadb -uroot -N -e 'select @@port' 2>/dev/null || echo 3306
  else
    echo "$P_MARIADB_PRIVATE"
  fi
}

write_mariadb_conf() {
  mkdir -p "$E/mariadb"
  cat > "$E/mariadb/my.cnf" <<EOF
[mysqld]
datadir=$D/mysql
socket=$R/mysqld.sock
pid-file=$R/mysqld.pid
log-error=$L/mariadb.err
port=$P_MARIADB_PRIVATE
bind-address=127.0.0.1
user=mysql
skip-name-resolve
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
# slurmdbd warns below these values
innodb_buffer_pool_size=256M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900
max_allowed_packet=64M
[client]
socket=$R/mysqld.sock
port=$P_MARIADB_PRIVATE
EOF
}

start_mariadb() {
  local t0 mode; t0=$(now); mode=$(db_mode)
  if [ "$mode" = system ]; then
    mariadb -uroot -e 'select 1' >/dev/null 2>&1 \
      || die "this state dir uses the machine's MariaDB, which root cannot reach over the socket now (run: scripts/stack reset)"
    echo system > "$D/mariadb.mode"
    log "  mariadb        the machine's server on 127.0.0.1:$(db_port)"
  else
    echo private > "$D/mariadb.mode"
    write_mariadb_conf
    if ! svc_up mariadb; then
      cleanup_stale mariadb
      check_port_free "$P_MARIADB_PRIVATE" mariadb
      if [ ! -d "$D/mysql/mysql" ]; then
        install -d -o mysql -g mysql -m 750 "$D/mysql"
        mariadb-install-db --defaults-file="$E/mariadb/my.cnf" --auth-root-authentication-method=socket \
          --skip-test-db > "$L/mariadb-install-db.log" 2>&1 \
          || { tail_log "$L/mariadb-install-db.log"; die "mariadb-install-db failed"; }
      fi
      rm -f "$R/mysqld.pid"
      setsid /usr/sbin/mariadbd --defaults-file="$E/mariadb/my.cnf" >> "$L/mariadb.err" 2>&1 < /dev/null &
      record mariadb "$!"
      wait_svc 60 mariadb "$L/mariadb.err" "mariadb ping" mariadb-admin --defaults-file="$E/mariadb/my.cnf" ping || die "mariadb did not start"
    fi
  fi
  db_grants
  took mariadb "$t0"
}

# Databases and users. Both host variants: with skip-name-resolve a TCP client from
# 127.0.0.1 matches user@'127.0.0.1', not user@'localhost'. Passwords come from the state
# dir and are (re)set on every up, so a fresh state dir takes over users left by an older one.
db_grants() {
  local p_slurm p_ro p_portal fresh_sql="" root_sql=""
  p_slurm=$(secret mariadb_slurm)
  p_ro=$(secret mariadb_portal_ro)
  p_portal=$(secret mariadb_portal)
  if [ ! -e "$D/.db-initialized" ]; then
    # A new state dir: drop what an earlier stack left behind (job ids would otherwise clash).
    fresh_sql="DROP DATABASE IF EXISTS slurm_acct_db; DROP DATABASE IF EXISTS userportal; DROP DATABASE IF EXISTS test_userportal;"
  fi
  if [ "$(db_mode)" = private ]; then
    # root over TCP with a password (the socket's root@localhost stays unix_socket only): scripts/test's
    # MariaDB unit pass creates and drops its test databases with it (URL in test-db.env)
    local p_root; p_root=$(secret mariadb_root)
    root_sql="CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$p_root';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$p_root'; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
  fi
  sql_root <<EOF || die "creating the databases and users failed"
$fresh_sql
$root_sql
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE DATABASE IF NOT EXISTS userportal CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$p_slurm';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$p_slurm';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$p_slurm';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$p_slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'portal_ro'@'localhost' IDENTIFIED BY '$p_ro';
CREATE USER IF NOT EXISTS 'portal_ro'@'127.0.0.1' IDENTIFIED BY '$p_ro';
ALTER USER 'portal_ro'@'localhost' IDENTIFIED BY '$p_ro';
ALTER USER 'portal_ro'@'127.0.0.1' IDENTIFIED BY '$p_ro';
GRANT SELECT ON slurm_acct_db.* TO 'portal_ro'@'localhost';
GRANT SELECT ON slurm_acct_db.* TO 'portal_ro'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'portal'@'localhost' IDENTIFIED BY '$p_portal';
CREATE USER IF NOT EXISTS 'portal'@'127.0.0.1' IDENTIFIED BY '$p_portal';
ALTER USER 'portal'@'localhost' IDENTIFIED BY '$p_portal';
ALTER USER 'portal'@'127.0.0.1' IDENTIFIED BY '$p_portal';
GRANT ALL ON userportal.* TO 'portal'@'localhost';
GRANT ALL ON userportal.* TO 'portal'@'127.0.0.1';
GRANT ALL ON \`test_userportal%\`.* TO 'portal'@'localhost';
GRANT ALL ON \`test_userportal%\`.* TO 'portal'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
  touch "$D/.db-initialized"
}

stop_mariadb() {
  [ "$(db_mode)" = private ] && stop_svc mariadb 30
  return 0
}

# drop_databases: for `reset` (only when the machine's server is used; a private one is wiped with its datadir)
drop_databases() {
  [ -s "$D/mariadb.mode" ] || return 0
  if [ "$(cat "$D/mariadb.mode")" = system ] && mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
    local dbs
    dbs=$(mariadb -uroot -N -e "SHOW DATABASES LIKE 'test\\_userportal%'" | tr '\n' ' ')
    mariadb -uroot -e "DROP DATABASE IF EXISTS slurm_acct_db; DROP DATABASE IF EXISTS userportal;" || true
    local db
    for db in $dbs; do mariadb -uroot -e "DROP DATABASE IF EXISTS \`$db\`" || true; done
    mariadb -uroot -e "DROP USER IF EXISTS 'slurm'@'localhost', 'slurm'@'127.0.0.1', 'portal_ro'@'localhost', 'portal_ro'@'127.0.0.1', 'portal'@'localhost', 'portal'@'127.0.0.1'" || true
    log "  dropped slurm_acct_db, userportal, test_userportal* and the stack's users from the machine's MariaDB"
  fi
}
