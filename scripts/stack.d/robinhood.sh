# shellcheck shell=bash
# Robinhood: a Robinhood-schema database `robinhood` (its ACCT_STAT table, as robinhood 3 creates it
# for a Lustre-HSM filesystem) in the stack's MariaDB, with a SELECT-only account for the portal and
# fixed rows for the stack's users and groups, so tests can cross-check the quotas pages exactly.
# Idempotent: rows are replaced on every run. ROBINHOOD_URL is appended to portal.env.

robinhood_rows() {
  # uid gid type lhsm_status size blocks count (blocks in 512-byte units; released files keep 0 blocks)
  local G=$((1024 * 1024 * 1024))
  cat <<ROWS
alice physics file '' $((150 * G)) $((150 * G / 512)) 42000
alice physics dir '' $((4096 * 1200)) $((8 * 1200)) 1200
bob physics file '' $((20 * G)) $((20 * G / 512)) 3100
bob physics file 'new' $((2 * G)) $((2 * G / 512)) 150
staffer physics file '' 1048576 2048 2
root physics dir '' 4096 8 1
alice physics file 'synchro' $((300 * G)) $((300 * G / 512)) 800
alice physics file 'released' $((2048 * G)) 0 5000
bob physics file 'modified' $((10 * G)) $((10 * G / 512)) 40
bob chem file '' $((400 * G)) $((400 * G / 512)) 250000
carol chem file '' $((520 * G)) $((520 * G / 512)) 180000
carol chem dir '' $((4096 * 5000)) $((8 * 5000)) 5000
root chem dir '' 4096 8 1
staffer staff file '' $((5 * G)) $((5 * G / 512)) 900
ROWS
}

start_robinhood() {
  local t0 p_ro values="" uid gid type st size blocks count
  t0=$(now)
  p_ro=$(secret mariadb_robinhood_ro)
  while read -r uid gid type st size blocks count; do
    values+="${values:+,}('$uid','$gid','$type',$st,$size,$blocks,$count,$((count / 2)),$((count / 4)),$((count / 100)))"
  done < <(robinhood_rows)
  sql_root <<SQL || die "creating the robinhood database failed"
CREATE DATABASE IF NOT EXISTS robinhood CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE TABLE IF NOT EXISTS robinhood.ACCT_STAT (
  uid VARBINARY(127) NOT NULL, gid VARBINARY(127) NOT NULL,
  type ENUM('symlink','dir','file','chr','blk','fifo','sock') NOT NULL,
  lhsm_status ENUM('','new','modified','retrieving','archiving','synchro','released','release_pending') NOT NULL DEFAULT '',
  size BIGINT UNSIGNED NOT NULL DEFAULT 0, blocks BIGINT UNSIGNED NOT NULL DEFAULT 0, count BIGINT UNSIGNED NOT NULL DEFAULT 0,
  sz0 BIGINT UNSIGNED DEFAULT 0, sz1 BIGINT UNSIGNED DEFAULT 0, sz32 BIGINT UNSIGNED DEFAULT 0,
  sz1K BIGINT UNSIGNED DEFAULT 0, sz32K BIGINT UNSIGNED DEFAULT 0, sz1M BIGINT UNSIGNED DEFAULT 0,
  sz32M BIGINT UNSIGNED DEFAULT 0, sz1G BIGINT UNSIGNED DEFAULT 0, sz32G BIGINT UNSIGNED DEFAULT 0,
  sz1T BIGINT UNSIGNED DEFAULT 0,
  PRIMARY KEY (uid, gid, type, lhsm_status)
) ENGINE=InnoDB;
DELETE FROM robinhood.ACCT_STAT;
INSERT INTO robinhood.ACCT_STAT (uid, gid, type, lhsm_status, size, blocks, count, sz32K, sz1M, sz1G) VALUES $values;
CREATE USER IF NOT EXISTS 'robinhood_ro'@'localhost' IDENTIFIED BY '$p_ro';
CREATE USER IF NOT EXISTS 'robinhood_ro'@'127.0.0.1' IDENTIFIED BY '$p_ro';
ALTER USER 'robinhood_ro'@'localhost' IDENTIFIED BY '$p_ro';
ALTER USER 'robinhood_ro'@'127.0.0.1' IDENTIFIED BY '$p_ro';
GRANT SELECT ON robinhood.* TO 'robinhood_ro'@'localhost';
GRANT SELECT ON robinhood.* TO 'robinhood_ro'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
  robinhood_env
  took robinhood "$t0"
}

# robinhood_env: (re)append ROBINHOOD_URL to portal.env, which write_portal_env rewrites
robinhood_env() {
  [ -s "$PORTAL_ENV" ] || return 0
  local t=$PORTAL_ENV.rbh
  grep -v '^export ROBINHOOD_URL=' "$PORTAL_ENV" > "$t" || true
  env_line ROBINHOOD_URL "mysql://robinhood_ro:$(secret mariadb_robinhood_ro)@127.0.0.1:$(db_port)/robinhood" >> "$t"
  chgrp www-data "$t"; chmod 640 "$t"; mv -f "$t" "$PORTAL_ENV"
}
