# shellcheck shell=bash
# The job-script uploader (slurm_prolog/userportal_prolog, built into one .pyz file as a site builds
# it) as slurmctld's PrologSlurmctld: a wrapper that always exits 0, its ini (the stack's Apache and
# a service account's token), its queue dir (owned by slurm). PORTAL_STACK_PROLOG, when set, replaces
# the wrapper (empty: no prolog).

PROLOG_WRAPPER=$E/slurm/userportal-prolog.sh
PROLOG_PYZ=$E/slurm/slurm_prolog_userportal.pyz  # `make prolog`'s file, rebuilt on every up
PROLOG_INI=$E/slurm/userportal-prolog.ini
PROLOG_QUEUE=$D/userportal-prolog
PROLOG_LOG=$L/userportal-prolog.log            # written by the uploader, as slurm
PROLOG_SETUP_LOG=$L/userportal-prolog-setup.log  # the token's creation, as root
PROLOG_ACCOUNT=slurm-prolog-$CLUSTER
PROLOG_PROGRAM=""

# the ini, with the token in $SEC/prolog_token (a placeholder before the portal's DB is migrated:
# uploads are then refused or find Apache down, and wait in the queue for start_prolog_uploader)
write_prolog_ini() {
  local token
  token=$(cat "$SEC/prolog_token" 2>/dev/null || true)
  (umask 077; cat > "$PROLOG_INI.tmp" <<EOF
# Written by scripts/stack: the job-script uploader's settings (see slurm_prolog/README.md).
[api]
host = http://127.0.0.1:$P_APACHE
token = ${token:-not-issued-yet}
timeout = 2

[slurm]
spool = $D/slurmctld
cluster = $CLUSTER

[queue]
dir = $PROLOG_QUEUE
backoff = 0
EOF
)
  chown root:slurm "$PROLOG_INI.tmp"; chmod 640 "$PROLOG_INI.tmp"; mv -f "$PROLOG_INI.tmp" "$PROLOG_INI"
}

# before slurm.conf is written: sets PROLOG_PROGRAM (what PrologSlurmctld runs, empty for none)
setup_prolog() {
  if [ "${PORTAL_STACK_PROLOG+set}" = set ]; then PROLOG_PROGRAM=$PORTAL_STACK_PROLOG; return 0; fi
  mkdir -p "$E/slurm"
  install -d -o slurm -g slurm -m 700 "$PROLOG_QUEUE"
  # slurm's own file: in the sticky log dir, root must not create it first
  [ -e "$PROLOG_LOG" ] || runuser -u slurm -- touch "$PROLOG_LOG"
  chown slurm:slurm "$PROLOG_LOG"
  write_prolog_ini
  "$SYS_PY" -m zipapp "$REPO/slurm_prolog/userportal_prolog" -p "$SYS_PY" -o "$PROLOG_PYZ.tmp" \
    && chmod 755 "$PROLOG_PYZ.tmp" && mv -f "$PROLOG_PYZ.tmp" "$PROLOG_PYZ" \
    || warn "building $PROLOG_PYZ failed: the prolog uploads nothing"
  cat > "$PROLOG_WRAPPER.tmp" <<EOF
#!/bin/sh
$SYS_PY $PROLOG_PYZ --config $PROLOG_INI --stderr >> $PROLOG_LOG 2>&1
exit 0
EOF
  chmod 755 "$PROLOG_WRAPPER.tmp"; mv -f "$PROLOG_WRAPPER.tmp" "$PROLOG_WRAPPER"
  PROLOG_PROGRAM=$PROLOG_WRAPPER
}

# the token in $SEC/prolog_token is a usable token of the service account in the portal's DB
prolog_token_ok() {
  [ -s "$SEC/prolog_token" ] || return 1
  (
    export PROLOG_KEY PROLOG_ACCOUNT
    PROLOG_KEY=$(cat "$SEC/prolog_token")
    portal_run "$(portal_python)" manage.py shell -c "
import os, sys
from userportal.tokens import find_token
t = find_token(os.environ['PROLOG_KEY'])
sys.exit(0 if t is not None and t.is_usable() and t.user.username == os.environ['PROLOG_ACCOUNT'] else 1)
" >/dev/null 2>&1
  )
}

# after the portal's migrations and Apache: a token for the uploader (issued once, kept in
# $SEC/prolog_token, issued again when the portal's DB lost it), then send what waits in the queue
start_prolog_uploader() {
  [ "${PORTAL_STACK_PROLOG+set}" = set ] && return 0
  [ -f "$PROLOG_INI" ] || setup_prolog
  local t0 key; t0=$(now)
  if ! prolog_token_ok; then
    key=$(portal_run "$(portal_python)" manage.py create_service_account "$PROLOG_ACCOUNT" --reset \
      --token-name "scripts/stack PrologSlurmctld" 2>> "$PROLOG_SETUP_LOG") \
      || { tail_log "$PROLOG_SETUP_LOG"; warn "create_service_account failed ($PROLOG_SETUP_LOG)"; return 1; }
    [ -n "$key" ] || { warn "create_service_account printed no token"; return 1; }
    (umask 077; printf '%s\n' "$key" > "$SEC/prolog_token")
    write_prolog_ini
    log "  issued an API token for $PROLOG_ACCOUNT (the job-script uploader)"
  fi
  if svc_up apache; then
    # the queued uploads (jobs that started before the token existed or while Apache was down)
    runuser -u slurm -- sh -c "$SYS_PY $PROLOG_PYZ --config $PROLOG_INI --flush --stderr >> $PROLOG_LOG 2>&1" \
      || warn "uploads are still queued in $PROLOG_QUEUE ($PROLOG_LOG)"
  fi
  took "prolog token" "$t0"
}
