# shellcheck shell=bash
# The portal's side: portal.env (what the portal and the tests source), the daemon env
# (SECRET_KEY, DATABASE_URL ... for the portal processes the stack runs), migrations and
# collectstatic, Celery worker + beat, Apache + mod_wsgi.

PORTAL_ENV=$S/portal.env
DAEMON_ENV=$E/portal/daemon.env
APACHE_ENV=$E/apache/apache.env

# env_line NAME VALUE: one export line, single-quoted
env_line() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }

write_portal_env() {
  local port rport t
  port=$(db_port)
  rport=$(redis_port)
  install -d -m 750 -g www-data "$E/portal"
  # the portal signs slurmrestd tokens itself: a copy of the JWT key it (and www-data) can read
  ensure_jwt_key
  install -m 640 -g www-data "$E/slurm/jwt_hs256.key" "$E/portal/jwt_hs256.key"
  write_cloud_projects
  t=$PORTAL_ENV.tmp
  {
    echo "# Written by scripts/stack up ($(date -u +%FT%TZ)). Source it: . $PORTAL_ENV"
    env_line PORTAL_STACK_DIR "$S"
    env_line SLURMDB_URL "mysql://portal_ro:$(secret mariadb_portal_ro)@127.0.0.1:$port/slurm_acct_db"
    env_line PORTAL_STACK_DATABASE_URL "mysql://portal:$(secret mariadb_portal)@127.0.0.1:$port/userportal"
    env_line SLURM_CLUSTERS "$CLUSTER"
    env_line SLURM_CONF "$SLURM_CONF"
    env_line SLURMRESTD_URL "http://127.0.0.1:$P_SLURMRESTD"
    env_line SLURMRESTD_JWT_KEY "$E/portal/jwt_hs256.key"
    env_line PROMETHEUS_URL "http://127.0.0.1:$P_PROMETHEUS"
    env_line JOBSTATS_LOCAL_SCRATCH /   # node_exporter's filesystem of this machine (it has no /localscratch)
    env_line REDIS_URL "redis://127.0.0.1:$rport/$REDIS_DB"
    env_line CELERY_BROKER_URL "redis://127.0.0.1:$rport/$REDIS_DB"
    env_line AUTH_LDAP_SERVER_URI "ldap://127.0.0.1:$P_LDAP"
    env_line AUTH_LDAP_BIND_DN "$LDAP_READER"
    env_line AUTH_LDAP_BIND_PASSWORD "$(secret ldap_reader)"
    env_line AUTH_LDAP_USER_SEARCH_BASE "$LDAP_PEOPLE"
    env_line AUTH_LDAP_USER_FILTER "(uid=%(user)s)"
    env_line AUTH_LDAP_STAFF_GROUP_DN "$LDAP_STAFF"
    env_line AUTH_LDAP_GROUP_SEARCH_BASE "$LDAP_GROUPS"
    env_line AUTH_LDAP_GROUP_TYPE groupOfNames
    env_line OIDC_RP_CLIENT_ID userportal
    env_line OIDC_RP_CLIENT_SECRET "$(secret oidc_client)"
    env_line OIDC_OP_AUTHORIZATION_ENDPOINT "$OIDC_ISSUER/auth"
    env_line OIDC_OP_TOKEN_ENDPOINT "$OIDC_ISSUER/token"
    env_line OIDC_OP_USER_ENDPOINT "$OIDC_ISSUER/me"
    env_line OIDC_OP_JWKS_ENDPOINT "$OIDC_ISSUER/jwks"
    env_line OIDC_STAFF_CLAIM groups
    env_line OIDC_STAFF_VALUES hpc-staff
    env_line EMAIL_URL "smtp://127.0.0.1:$P_SMTP"
    env_line PORTAL_STACK_MAILDIR "$D/maildir"
    env_line PORTAL_STACK_SSH_CONFIG "$E/ssh/client_config"
    env_line PORTAL_STACK_SSH_KNOWN_HOSTS "$E/ssh/known_hosts"
    env_line PORTAL_STACK_SSH_KEY_DIR "$E/ssh/keys"
    env_line PORTAL_STACK_OIDC_ISSUER "$OIDC_ISSUER"
    env_line PORTAL_STACK_URL "http://127.0.0.1:$P_APACHE"
    env_line PORTAL_STACK_METRICS_TOKEN_FILE "$SEC/portal_metrics_token"   # Prometheus scrapes /metrics with it
    env_line PORTAL_STAFF_AFFILIATIONS staff@example.org
    # cloudstats: the guests' projects and members (libvirt.sh); setting it mounts the module
    env_line CLOUDSTATS_MEMBERSHIP file
    env_line CLOUDSTATS_PROJECTS_FILE "$E/portal/cloud-projects.yaml"
  } > "$t"
  chgrp www-data "$t"; chmod 640 "$t"; mv -f "$t" "$PORTAL_ENV"

  # For the portal processes the stack runs itself (Apache, Celery): not for the tests.
  {
    echo "# Written by scripts/stack: the portal daemons' own settings (loaded after portal.env)."
    env_line DJANGO_SETTINGS_MODULE userportal.settings
    env_line SECRET_KEY "$(secret django_secret_key)"
    env_line AUDIT_HMAC_KEY "$(secret audit_hmac_key)"
    env_line PORTAL_METRICS_TOKEN "$(secret portal_metrics_token)"
    env_line DATABASE_URL "mysql://portal:$(secret mariadb_portal)@127.0.0.1:$port/userportal"
    env_line PORTAL_VAR_DIR "$D/portal-var"
    env_line PORTAL_HTTPS false
    env_line ALLOWED_HOSTS "127.0.0.1,localhost"
    env_line CSRF_TRUSTED_ORIGINS "http://127.0.0.1:$P_APACHE,http://localhost:$P_APACHE"
    # The job queue's ssh executor: the GPU nodes gpu01 (sshd 2222) and gpu02 (sshd 2224), both
    # this machine, through the jump host (sshd 2223)
    # as the Unix user jobqueue. Only Celery (root) uses the key; Apache just queues and reads jobs.
    env_line JOBQUEUE_EXECUTOR ssh
    env_line JOBQUEUE_NODES "gpu01=127.0.0.1:$P_SSH_NODE,gpu02=127.0.0.1:$P_SSH_NODE2"
    env_line JOBQUEUE_SSH_JUMP "127.0.0.1:$P_SSH_JUMP"
    env_line JOBQUEUE_SSH_USER jobqueue
    env_line JOBQUEUE_SSH_KEY "$E/ssh/keys/jobqueue_ed25519"
    env_line JOBQUEUE_SSH_KNOWN_HOSTS "$E/ssh/known_hosts"
    env_line JOBQUEUE_REMOTE_DIR "$D/jobqueue-node"
    env_line JOBQUEUE_DIR "$D/jobqueue"
    # quicker than production: a job's steps every 2 s, a job nobody followed for 30 s is picked up
    # again by beat's jobqueue.reconcile (a killed worker's delayed step waits in Redis for an hour)
    env_line JOBQUEUE_POLL_SECONDS 2
    env_line JOBQUEUE_STALE_SECONDS 30
    # every test client is 127.0.0.1: per-IP limits ×10 (the per-user limits stay the defaults)
    env_line JOBQUEUE_IP_RATES "submit=50/min,status=600/min,results=600/min,cancel=100/min,jobs=300/min,nodes=600/min,dashboard=300/min"
    # billing roles from Slurm's AdminLevel (tests/integration/test_billing_roles_stack.py)
    env_line BILLING_ROLES_FROM_SLURM true
    # the public cluster status: every section the stack has series for (no login node: cpu01 stands in)
    env_line PAGES_SECTIONS "scheduler,logins,software"
    env_line PAGES_LOGIN_NODES "login=cpu01:9100"
    # the modules mounted: every one (so Apache serves and the browser test shows each), unless
    # PORTAL_STACK_MODULES is set when running up
    env_line PORTAL_MODULES "${PORTAL_STACK_MODULES:-all}"
    # extra settings for the stack's portal daemons (export lines), e.g. PORTAL_LOG_LEVEL=DEBUG
    if [ -n "${PORTAL_STACK_EXTRA_ENV:-}" ]; then
      [ -r "$PORTAL_STACK_EXTRA_ENV" ] || die "PORTAL_STACK_EXTRA_ENV=$PORTAL_STACK_EXTRA_ENV is not readable"
      echo "# from PORTAL_STACK_EXTRA_ENV=$PORTAL_STACK_EXTRA_ENV"
      grep -E '^export [A-Za-z_][A-Za-z0-9_]*=' "$PORTAL_STACK_EXTRA_ENV" || true
    fi
  } > "$DAEMON_ENV.tmp"
  chgrp www-data "$DAEMON_ENV.tmp"; chmod 640 "$DAEMON_ENV.tmp"; mv -f "$DAEMON_ENV.tmp" "$DAEMON_ENV"
  install -d -m 1777 "$D/portal-var"
  # the job queue: results (written by Celery, root) and the job directories on the "node" (jobqueue)
  install -d -m 755 "$D/jobqueue"
  if id jobqueue >/dev/null 2>&1; then install -d -o jobqueue -g jobqueue -m 700 "$D/jobqueue-node"; fi
}

print_env() {
  if [ -s "$PORTAL_ENV" ]; then
    grep '^export ' "$PORTAL_ENV"
  else
    [ "$(id -u)" = 0 ] || die "no $PORTAL_ENV yet (run scripts/stack up as root)"
    make_dirs
    write_portal_env
    grep '^export ' "$PORTAL_ENV"
  fi
}

# What the portal processes the stack runs keep of the caller's environment; everything else comes
# from the env files. A test process that runs scripts/stack (up, restart-worker) must not hand its
# own settings to Celery, migrate or collectstatic: userportal/settings_test.py exports
# CELERY_TASK_ALWAYS_EAGER=true, PORTAL_MANIFEST_STATIC=false, PROMETHEUS_TIMEOUT=0.5, PORTAL_MODULES.
# (PROLOG_KEY and PROLOG_ACCOUNT: prolog_token_ok hands them to manage.py shell.)
PORTAL_RUN_KEEP="PATH HOME LANG LC_ALL TZ TERM PROLOG_KEY PROLOG_ACCOUNT"

# portal_run <python> <args...>: run a portal command with portal.env + daemon.env, in the repo
portal_run() {
  local py=$1; shift
  (
    local name
    for name in $(compgen -e); do
      case " $PORTAL_RUN_KEEP " in *" $name "*) ;; *) unset "$name" 2>/dev/null || true ;; esac
    done
    set -a
    # shellcheck disable=SC1090
    . "$PORTAL_ENV"; . "$DAEMON_ENV"
    set +a
    cd "$REPO" && "$py" "$@"
  )
}

portal_python() {
  if apache_venv_ok; then echo "$APACHE_VENV/bin/python"; else echo "$PORTAL_VENV/bin/python"; fi
}

# a stamp over the portal's code and static files: migrate/collectstatic run again only when it changes
portal_code_stamp() {
  # (files may vanish while other people edit the tree: find's exit status does not matter)
  { find "$REPO" \( -path "$REPO/.venv" -o -path "$REPO/.git" -o -path "$REPO/var" -o -name node_modules \
    -o -name __pycache__ -o -path "$REPO/scripts" \) -prune -o -type f \( -name '*.py' -o -path '*/static/*' \) \
    -printf '%P %T@ %s\n' 2>/dev/null || true; } | sort | sha256sum | cut -c1-16
}

# Migrations on the portal's MariaDB database and collectstatic (WhiteNoise serves the manifest).
prepare_portal() {
  [ -f "$REPO/manage.py" ] || { warn "no $REPO/manage.py yet: not migrating"; return 1; }
  local py stamp t0; t0=$(now); py=$(portal_python)
  stamp=$(portal_code_stamp)
  if [ "$(cat "$D/portal-prepared" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  if ! portal_run "$py" manage.py migrate --noinput > "$L/portal-migrate.log" 2>&1; then
    tail_log "$L/portal-migrate.log"; warn "manage.py migrate failed (log: $L/portal-migrate.log)"; return 1
  fi
  if ! portal_run "$py" manage.py collectstatic --noinput > "$L/portal-collectstatic.log" 2>&1; then
    tail_log "$L/portal-collectstatic.log"; warn "manage.py collectstatic failed (log: $L/portal-collectstatic.log)"
  fi
  chmod -R a+rX "$D/portal-var" 2>/dev/null || true
  echo "$stamp" > "$D/portal-prepared"
  took "portal migrate" "$t0"
}

# ------------------------------------------------------------------ Celery
celery_importable() {
  [ -x "$PORTAL_VENV/bin/python" ] || return 1
  local out=/dev/null; [ -d "$L" ] && out=$L/celery-import.log
  portal_run "$PORTAL_VENV/bin/python" -c 'import userportal.celery' > "$out" 2>&1
}

start_celery() {
  local t0; t0=$(now)
  if svc_up celery-worker && svc_up celery-beat; then took celery "$t0"; return 0; fi
  if ! celery_importable; then
    warn "celery: 'import userportal.celery' fails in $PORTAL_VENV: worker and beat not started ($L/celery-import.log)"
    rm -f "$D/celery.enabled"
    return 0
  fi
  touch "$D/celery.enabled"
  local C=$PORTAL_VENV/bin/celery
  if ! svc_up celery-worker; then
    cleanup_stale celery-worker
    rm -f "$R/celery-worker.pid"; : > "$L/celery-worker.log"
    # --workdir is a global option: it must come before -A
    portal_run "$C" --workdir "$REPO" -A userportal.celery:app worker -l info --concurrency=2 \
      -n "portal@userportal-stack" --logfile="$L/celery-worker.log" --pidfile="$R/celery-worker.pid" --detach \
      || { tail_log "$L/celery-worker.log"; { warn "celery worker did not start"; return 1; }; }
  fi
  if ! svc_up celery-beat; then
    cleanup_stale celery-beat
    rm -f "$R/celery-beat.pid"; : > "$L/celery-beat.log"
    portal_run "$C" --workdir "$REPO" -A userportal.celery:app beat -l info --schedule "$D/celerybeat-schedule" \
      --logfile="$L/celery-beat.log" --pidfile="$R/celery-beat.pid" --detach \
      || { tail_log "$L/celery-beat.log"; { warn "celery beat did not start"; return 1; }; }
  fi
  celery_wait celery-worker "$L/celery-worker.log" 'portal@userportal-stack ready' || return 1
  celery_wait celery-beat "$L/celery-beat.log" 'beat: Starting' || return 1
  took celery "$t0"
}

# celery_wait <name> <log> <ready-text>: the detached process writes its pid file, then logs
# <ready-text>; fail fast (with the log) when it dies on the way (e.g. the portal does not import)
celery_wait() {
  local name=$1 logf=$2 ready=$3 i pid=""
  for ((i = 0; i < 600; i++)); do
    if [ -z "$pid" ] && [ -s "$R/$name.pid" ]; then
      pid=$(tr -dc 0-9 < "$R/$name.pid"); record "$name" "$pid" || true
    fi
    if grep -q "$ready" "$logf" 2>/dev/null; then
      [ -n "$pid" ] && pid_alive "$pid" && return 0
    fi
    if [ -n "$pid" ] && ! pid_alive "$pid"; then break; fi
    if [ -z "$pid" ] && [ "$i" -ge 100 ]; then break; fi
    sleep 0.1
  done
  tail_log "$logf"
  warn "$name did not become ready (log: $logf)"
  return 1
}

stop_celery() { stop_svc celery-beat 10; stop_svc celery-worker 20; }

# restart-worker: the Celery worker alone, e.g. after it was killed: stop it (warm shutdown) or
# what a killed one left (its pool), start it again with the current env files and wait until it
# is ready; beat is started too when it is not running. Apache and everything else are left alone.
restart_celery_worker() {
  [ -s "$PORTAL_ENV" ] && [ -s "$DAEMON_ENV" ] || die "the stack is not up (no $PORTAL_ENV)"
  local t0; t0=$(now)
  stop_svc celery-worker 20
  start_celery || die "the Celery worker did not start (log: $L/celery-worker.log)"
  svc_up celery-worker || die "the Celery worker is not running (see $L/celery-worker.log, $L/celery-import.log)"
  took restart-worker "$t0"
}

# ------------------------------------------------------------------ Apache + mod_wsgi
apache_possible() {
  [ -f "$REPO/requirements.txt" ] && apache_venv_ok && [ -f "$REPO/userportal/wsgi.py" ]
}

write_apache_conf() {
  local d=$E/apache
  install -d -m 755 "$d"
  install -d -m 1777 "$R/apache"
  {
    echo "# Written by scripts/stack: Apache-only settings for the portal (loaded after portal.env and daemon.env)."
    env_line PORTAL_REMOTE_USER true
    env_line PORTAL_ALLOWED_REALMS example.org
    # The stack's realm, OIDC provider and directory name the same people (alice is alice everywhere).
    env_line PORTAL_LINK_IDENTITY_SOURCES true
    env_line PORTAL_AFFILIATION_ATTRIBUTE affiliation
    # PAM sign-in against the stack's Unix users (pam_unix through /etc/pam.d/login; the daemon
    # reads /etc/shadow as a member of the group shadow, see WSGIDaemonProcess below)
    env_line PORTAL_PAM true
    env_line PAM_SERVICE login
    # OIDC endpoints from the provider's discovery document (portal.env names them for the tests)
    env_line OIDC_OP_DISCOVERY_URL "$OIDC_ISSUER/.well-known/openid-configuration"
    env_line OIDC_OP_AUTHORIZATION_ENDPOINT ""
    env_line OIDC_OP_TOKEN_ENDPOINT ""
    env_line OIDC_OP_USER_ENDPOINT ""
    env_line OIDC_OP_JWKS_ENDPOINT ""
    # the portal's log (with one timing line per request) in a file of its own, rotated by size
    env_line PORTAL_LOG_FILE "$L/portal-apache.log"
  } > "$APACHE_ENV"
  chgrp www-data "$APACHE_ENV"; chmod 640 "$APACHE_ENV"
  # SetEnv does not reach os.environ under mod_wsgi: the wrapper loads the env files itself.
  sed -e "s#@ENV_FILES@#$PORTAL_ENV|$DAEMON_ENV|$APACHE_ENV#" -e "s#@REPO@#$REPO#" \
    "$STACK_D/portal_wsgi.py" > "$d/portal_wsgi.py"
  chmod 644 "$d/portal_wsgi.py"
  cat > "$d/httpd.conf" <<EOF
# Written by scripts/stack: a standalone Apache (not /etc/apache2/sites-*), loopback only.
ServerRoot "/etc/apache2"
ServerName 127.0.0.1
Listen 127.0.0.1:$P_APACHE
PidFile $R/apache.pid
ErrorLog $L/apache-error.log
LogLevel warn
LogFormat "%h %u %t \"%r\" %>s %b %Dus" stack
CustomLog $L/apache-access.log stack
DefaultRuntimeDir $R/apache
Mutex file:$R/apache
User www-data
Group www-data
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule env_module /usr/lib/apache2/modules/mod_env.so
LoadModule setenvif_module /usr/lib/apache2/modules/mod_setenvif.so
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so
TypesConfig /etc/mime.types
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 4
MaxSpareThreads 16
Timeout 60
# the daemon's socket in the state dir: Debian's default /run/apache2 exists only where systemd-tmpfiles made it
WSGISocketPrefix $R/apache/wsgi
# mod_wsgi embeds Debian's python3 (3.11.2): the venv was made by /usr/bin/python3
# supplementary-groups=shadow: pam_unix reads /etc/shadow for the PAM sign-in (PORTAL_PAM)
WSGIDaemonProcess portal processes=1 threads=8 python-home=$APACHE_VENV python-path=$REPO home=$REPO display-name=%{GROUP} supplementary-groups=shadow
# A second instance of the portal: processes of its own (nothing in memory shared with the first);
# a request goes to it with the header X-Portal-Instance: 2 (tests/integration/test_two_instances_stack.py)
WSGIDaemonProcess portal2 processes=1 threads=4 python-home=$APACHE_VENV python-path=$REPO home=$REPO display-name=%{GROUP} supplementary-groups=shadow
SetEnvIf Request_URI "^" PORTAL_INSTANCE=portal
SetEnvIf X-Portal-Instance "^2\$" PORTAL_INSTANCE=portal2
WSGIProcessGroup %{ENV:PORTAL_INSTANCE}
WSGIApplicationGroup %{GLOBAL}
WSGIPassAuthorization On
WSGIScriptAlias / $d/portal_wsgi.py
# Each daemon loads the portal when it starts (userportal/warmup.py builds what first requests would), not on its first request
WSGIImportScript $d/portal_wsgi.py process-group=portal application-group=%{GLOBAL}
WSGIImportScript $d/portal_wsgi.py process-group=portal2 application-group=%{GLOBAL}
<Directory $d>
    <Files portal_wsgi.py>
        Require all granted
    </Files>
</Directory>
# Shibboleth stand-in (Apache listens on 127.0.0.1 only): the test headers become what
# mod_shib would set, REMOTE_USER (the eppn, e.g. alice@example.org) and affiliation.
<Location />
    SetEnvIf X-Test-Remote-User "^(.+)\$" REMOTE_USER=\$1 eppn=\$1 Shib-Identity-Provider=https://idp.example.org/idp/shibboleth AUTH_TYPE=shibboleth
    SetEnvIf X-Test-Affiliation "^(.+)\$" affiliation=\$1 unscoped-affiliation=\$1
</Location>
# /secure needs a "Shibboleth session": without the header the request is refused.
<Location /secure>
    Require expr "-n req('X-Test-Remote-User')"
</Location>
EOF
}

start_apache() {
  local t0; t0=$(now)
  if svc_up apache; then took apache "$t0"; return 0; fi
  if ! apache_possible; then
    warn "apache: needs $REPO/requirements.txt, the Apache venv (scripts/stack install) and userportal/wsgi.py: not started"
    rm -f "$D/apache.enabled"
    return 0
  fi
  touch "$D/apache.enabled"
  cleanup_stale apache
  check_port_free "$P_APACHE" apache
  write_apache_conf
  apache2 -t -f "$E/apache/httpd.conf" > "$L/apache-configtest.log" 2>&1 \
    || { tail_log "$L/apache-configtest.log"; { warn "apache config test failed"; return 1; }; }
  rm -f "$R/apache.pid"
  # a clean environment, as for portal_run: portal_wsgi.py adds the env files' settings
  env -i PATH="$PATH" LANG="${LANG:-C.UTF-8}" APACHE_RUN_DIR="$R/apache" APACHE_LOCK_DIR="$R/apache" APACHE_LOG_DIR="$L" \
    apache2 -f "$E/apache/httpd.conf" -k start || { tail_log "$L/apache-error.log"; { warn "apache did not start"; return 1; }; }
  wait_for 10 "$L/apache-error.log" "apache pid file" test -s "$R/apache.pid" || { warn "apache did not start"; return 1; }
  record apache
  # any HTTP answer counts here (the portal may answer 302/403/500); smoke checks the content
  wait_for 60 "$L/apache-error.log" "apache answers" \
    sh -c "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$P_APACHE/ | grep -q '^[1-5]'" || { warn "apache does not answer"; return 1; }
  took apache "$t0"
}

stop_apache() { stop_svc apache 15; }

start_portal_services() {
  prepare_portal || warn "the portal's database is not ready: Apache and Celery may answer with errors"
  # a portal that cannot start yet (a bug in its code, a missing module) must not take the
  # cluster down with it: these report in status and smoke instead of failing up
  start_celery || warn "celery is not running: see scripts/stack status"
  start_apache || warn "apache is not running: see scripts/stack status"
  start_prolog_uploader || warn "the job-script uploader has no token: see $PROLOG_LOG"
}

stop_portal_services() { stop_apache; stop_celery; }
