# shellcheck shell=bash
# smoke: end-to-end checks of every component against the running stack. Every check runs
# (a failure does not stop the others); exit non-zero when any failed.

SMOKE_FAILS=0
SMOKE_DETAIL=""

# check <description> <function>: the function sets SMOKE_DETAIL and returns 0 on success
check() {
  local desc=$1 fn=$2 t0 rc=0; t0=$(now)
  SMOKE_DETAIL=""
  "$fn" > "$L/smoke-$fn.log" 2>&1 || rc=$?
  SMOKE_DETAIL=$(tail -n 1 "$L/smoke-$fn.log" 2>/dev/null | cut -c1-160)
  if [ "$rc" = 0 ]; then
    printf '%sPASS%s %-52s %5ss  %s\n' "$C_G" "$C_0" "$desc" "$(since "$t0")" "$SMOKE_DETAIL"
  else
    printf '%sFAIL%s %-52s %5ss  %s\n' "$C_R" "$C_0" "$desc" "$(since "$t0")" "$SMOKE_DETAIL"
    sed 's/^/       | /' "$L/smoke-$fn.log" | tail -n 15
    SMOKE_FAILS=$((SMOKE_FAILS + 1))
  fi
}

# ------------------------------------------------------------------ Slurm
sm_sinfo() {
  local out; out=$(sinfo -h -N -o '%N %T' | sort -u)
  echo "$out"
  ! grep -q -E 'down|drain|fail|unk|not_responding' <<< "$out" || return 1
  grep -q '^gpu01 ' <<< "$out" && grep -q '^cpu01 ' <<< "$out" || return 1
  grep -q -E ' (idle|mixed)$' <<< "$out" || return 1
  echo "nodes: $(tr '\n' ' ' <<< "$out")"
}

sm_sbatch_sacct() {
  local id state i
  id=$(cd "$D/jobs" && as_user alice sbatch --parsable -A physics -p gpu --gres=gpu:v100:1 -c 1 --mem=100M -t 2 \
        -J smoke -o "$D/jobs/smoke-%j.out" --wrap 'echo GPU=$CUDA_VISIBLE_DEVICES; sleep 1')
  echo "submitted $id"
  for i in $(seq 60); do
    state=$(TZ=UTC as_user alice sacct -n -X -P -j "$id" --format=State 2>/dev/null | head -1)
    [ "$state" = COMPLETED ] && break
    sleep 0.5
  done
  [ "$state" = COMPLETED ] || { echo "job $id state '$state'"; return 1; }
  grep -q 'GPU=2' "$D/jobs/smoke-$id.out" || { cat "$D/jobs/smoke-$id.out"; return 1; }
  # dave has no association: rejected at submit time
  if as_user dave sbatch -o /dev/null --wrap true 2>"$L/smoke-dave.err"; then echo "dave could submit"; return 1; fi
  grep -q -i 'invalid account' "$L/smoke-dave.err" || { cat "$L/smoke-dave.err"; return 1; }
  echo "job $id COMPLETED on a v100 (CUDA_VISIBLE_DEVICES=2); dave rejected (no association)"
}

sm_sacctmgr() {
  sacctmgr -n -P show assoc format=account,user where user=bob | sort | tr '\n' ' ' | grep -q 'chem|bob physics|bob' || return 1
  sacctmgr -i add qos smokeqos Priority=5 >/dev/null
  sacctmgr -i modify user carol where account=chem set qos+=smokeqos >/dev/null
  sacctmgr -n -P show assoc format=qos where user=carol account=chem | grep -q smokeqos || return 1
  sacctmgr -i delete qos smokeqos >/dev/null
  echo "bob in chem+physics; add/modify/delete qos work"
}

# ------------------------------------------------------------------ MariaDB
sm_reader() {
  local port pw n; port=$(db_port); pw=$(secret mariadb_portal_ro)
  n=$(mariadb -h127.0.0.1 -P"$port" -uportal_ro -p"$pw" slurm_acct_db -N -e "SELECT COUNT(*) FROM ${CLUSTER}_job_table")
  [ "$n" -ge 1 ] || return 1
  if mariadb -h127.0.0.1 -P"$port" -uportal_ro -p"$pw" slurm_acct_db -e "CREATE TABLE smoke_x (i int)" 2>"$L/smoke-create.err"; then
    echo "portal_ro could CREATE"; return 1
  fi
  grep -q 'denied' "$L/smoke-create.err" || { cat "$L/smoke-create.err"; return 1; }
  n2=$(mariadb -h127.0.0.1 -P"$port" -uportal_ro -p"$pw" slurm_acct_db -N -e "SELECT COUNT(*) FROM ${CLUSTER}_job_script_table")
  echo "portal_ro@127.0.0.1:$port sees $n jobs and $n2 stored scripts; CREATE denied"
}

sm_portal_db() {
  local port pw; port=$(db_port); pw=$(secret mariadb_portal)
  mariadb -h127.0.0.1 -P"$port" -uportal -p"$pw" userportal -e \
    "CREATE TABLE IF NOT EXISTS stack_smoke (i int); DROP TABLE stack_smoke;" || return 1
  mariadb -h127.0.0.1 -P"$port" -uportal -p"$pw" -e \
    "CREATE DATABASE IF NOT EXISTS test_userportal_smoke; DROP DATABASE test_userportal_smoke;" || return 1
  echo "portal@127.0.0.1:$port can create tables in userportal and create/drop test_userportal*"
}

# ------------------------------------------------------------------ slurmrestd
# rest_get <user> <token> <path> <jq-test>: GET with the JWT headers; up to 3 tries, logs the answer
rest_get() {
  local user=$1 tok=$2 path=$3 test=$4 i code
  for i in 1 2 3; do
    code=$(curl -s -o "$L/smoke-rest.out" -w '%{http_code}' -H "X-SLURM-USER-NAME: $user" -H "X-SLURM-USER-TOKEN: $tok" \
      "http://127.0.0.1:$P_SLURMRESTD$path")
    if [ "$code" = 200 ] && jq -e "$test" "$L/smoke-rest.out" >/dev/null 2>&1; then return 0; fi
    echo "try $i: GET $path as $user -> $code: $(head -c 300 "$L/smoke-rest.out" | tr '\n' ' ')"
    sleep 1
  done
  return 1
}

sm_restd() {
  local tok code
  tok=$(scontrol token username=alice lifespan=300 | cut -d= -f2)
  rest_get alice "$tok" /slurm/v0.0.38/jobs '.jobs | length > 0' || return 1
  rest_get alice "$tok" "/slurmdb/v0.0.38/jobs?start_time=now-1days" '[.jobs[] | select(.user == "alice")] | length > 0' || return 1
  # a token the portal mints itself with its copy of the key
  tok=$("$SYS_PY" "$STACK_D/smoke_checks.py" jwt "$E/portal/jwt_hs256.key" bob)
  rest_get bob "$tok" /slurm/v0.0.38/nodes '[.nodes[].name] | sort == ["cpu01","gpu01"]' || return 1
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_SLURMRESTD/slurm/v0.0.38/jobs")
  [ "$code" = 401 ] || { echo "no token -> $code"; return 1; }
  echo "scontrol token + portal-minted HS256 token accepted; no token -> 401"
}

# ------------------------------------------------------------------ Prometheus
prom_query() { curl -sf "http://127.0.0.1:$P_PROMETHEUS/api/v1/query" --data-urlencode "query=$1"; }
sm_prometheus() {
  local n end start
  end=$(date +%s); start=$((end - 6 * 3600))
  n=$(curl -sf "http://127.0.0.1:$P_PROMETHEUS/api/v1/query_range" \
        --data-urlencode 'query=sum by (slurmjobid, gpu_type) (slurm_job_utilization_gpu{slurmjobid=~"9000.."})' \
        --data-urlencode "start=$start" --data-urlencode "end=$end" --data-urlencode step=600 | jq '.data.result | length')
  [ "$n" -ge 2 ] || { echo "synthetic GPU series: $n"; return 1; }
  prom_query 'count(count by (gpu_type) (slurm_job_utilization_gpu))' | jq -e '.data.result[0].value[1] == "2"' >/dev/null || return 1
  prom_query 'count(max_over_time(slurm_account_levelfs[1d]))' | jq -e '.data.result[0].value[1] | tonumber >= 2' >/dev/null || return 1
  # the real node_exporter (node_exporter.sh), scraped once per stack node with the portal's instance labels
  prom_query 'count(count by (instance) (node_cpu_seconds_total{job="node",mode="idle",instance=~"(cpu01|gpu01):9100"}))' \
    | jq -e '.data.result[0].value[1] == "2"' >/dev/null || { echo "no node_exporter series for cpu01:9100 and gpu01:9100"; return 1; }
  # like the exporters, the stack's series carry no cluster label unless PROMETHEUS_EXTRA_LABELS asks for one
  if [ -z "${PROMETHEUS_EXTRA_LABELS:-}" ]; then
    prom_query 'count(slurm_job_core_usage_total{cluster!=""} or node_cpu_seconds_total{cluster!=""})' \
      | jq -e '.data.result | length == 0' >/dev/null || { echo "series with a cluster label"; return 1; }
  fi
  local real=""
  if [ -s "$D/jobs/batch.txt" ] && [ -e "$D/.first-batch-backfilled" ]; then
    local jid; jid=$(awk -F'|' '$1=="cpu-busy" {print $2}' "$D/jobs/batch.txt")
    prom_query "count(max_over_time(slurm_job_core_usage_total{slurmjobid=\"$jid\"}[1d]))" \
      | jq -e '.data.result[0].value[1] == "2"' >/dev/null || { echo "no series for real job $jid"; return 1; }
    real="; real job $jid: 2 core series"
  fi
  curl -sf "http://127.0.0.1:$P_PROMETHEUS/api/v1/rules" | jq -e '[.data.groups[].name] | index("slurm_job")' >/dev/null \
    || { echo "recording rules not loaded"; return 1; }
  prom_query 'count(max_over_time(slurm_job:used_core:sum_user_account[1d]))' \
    | jq -e '.data.result[0].value[1] | tonumber >= 2' >/dev/null || { echo "no recording-rule history"; return 1; }
  echo "6 h synthetic series ($n GPU jobs, 2 gpu_types), node_exporter and levelfs series, recording rules with history$real"
}

# ------------------------------------------------------------------ libvirt (libvirt.sh)
sm_libvirt() {
  if [ "$(libvirt_mode)" = no ] || { [ -s "$D/libvirt.failed" ] && [ "$(libvirt_mode)" = auto ]; }; then
    echo "skipped: $(cat "$D/libvirt.failed" 2>/dev/null || echo PORTAL_STACK_LIBVIRT=no)"; return 0
  fi
  local metrics n projects
  metrics=$(curl -sf "http://127.0.0.1:$P_LIBVIRT_EXPORTER/metrics") || { echo "the exporter does not answer"; return 1; }
  grep -q '^libvirt_up 1' <<< "$metrics" || { echo "libvirt_up is not 1"; return 1; }
  n=$(grep -c '^libvirt_domain_info_virtual_cpus{' <<< "$metrics" || true)
  [ "$n" = "$(vm_domains | wc -l)" ] || { echo "the exporter reports $n running guests"; return 1; }
  projects=$(grep -o 'project_name="[^"]*"' <<< "$metrics" | sort -u | tr '\n' ' ')
  [[ $projects == *'"chem"'*'"physics"'* ]] || { echo "nova labels missing: $projects"; return 1; }
  # Prometheus scrapes it and the guests use CPU (a rate needs two scrapes: 15 s apart)
  prom_query 'up{job="libvirt"}' | jq -e '.data.result[0].value[1] == "1"' >/dev/null || { echo "up{job=libvirt} is not 1"; return 1; }
  prom_query 'count(rate(libvirt_domain_info_cpu_time_seconds_total[2m]) > 0)' \
    | jq -e ".data.result[0].value[1] == \"$n\"" >/dev/null || { echo "not every guest has a CPU rate in Prometheus yet"; return 1; }
  echo "$n guests running with nova labels ($projects), scraped by Prometheus, CPU rates > 0"
}

# ------------------------------------------------------------------ Redis + Celery
sm_redis() {
  local port; port=$(redis_port)
  redis-cli -h 127.0.0.1 -p "$port" ping | grep -q PONG || return 1
  redis-cli -h 127.0.0.1 -p "$port" -n "$REDIS_DB" set userportal-stack:smoke ok EX 60 | grep -q OK || return 1
  [ "$(redis-cli -h 127.0.0.1 -p "$port" -n "$REDIS_DB" get userportal-stack:smoke)" = ok ] || return 1
  echo "PONG from 127.0.0.1:$port ($(redis_mode)), set/get on db $REDIS_DB"
}

sm_celery() {
  case $(celery_state) in
    enabled) ;;
    *) echo "celery not started (see status)"; return 1 ;;
  esac
  svc_up celery-worker && svc_up celery-beat || return 1
  local out
  out=$(portal_run "$PORTAL_VENV/bin/celery" -A userportal.celery:app inspect ping -d portal@userportal-stack -t 10 2>&1) || true
  echo "$out"
  grep -q pong <<< "$out" || return 1
  echo "worker portal@userportal-stack answers ping; beat running"
}

# ------------------------------------------------------------------ ssh
sm_ssh() {
  local cfg=$E/ssh/client_config out u
  for u in alice jobqueue; do
    out=$(ssh -F "$cfg" -l "$u" node 'echo "$(id -un)@$SSH_CONNECTION"; sacct -n -X -S now-1days --format=JobID | head -1')
    grep -q "^$u@" <<< "$out" || { echo "$out"; return 1; }
  done
  # the job queue's second GPU node: its own sshd, through the same jump host
  out=$(ssh -F "$cfg" -l jobqueue gpu02 'echo "$(id -un)@$SSH_CONNECTION"')
  grep -q "^jobqueue@.* $P_SSH_NODE2\$" <<< "$out" || { echo "gpu02: $out"; return 1; }
  # the jump host only forwards to the nodes
  if ssh -F "$cfg" -l alice -W 127.0.0.1:"$(db_port)" jump </dev/null >/dev/null 2>&1; then echo "jump host forwarded to MariaDB"; return 1; fi
  # no password logins
  if ssh -F "$cfg" -o BatchMode=yes -o PubkeyAuthentication=no -o PreferredAuthentications=password -l alice node true 2>/dev/null; then
    echo "password login accepted"; return 1
  fi
  echo "alice and jobqueue via the jump host to the node (sacct works there), jobqueue to gpu02; forwarding elsewhere refused"
}

# ------------------------------------------------------------------ LDAP
sm_ldap() {
  local H=ldap://127.0.0.1:$P_LDAP
  ldapsearch -x -LLL -H "$H" -D "$LDAP_READER" -w "$(secret ldap_reader)" -b "$LDAP_PEOPLE" '(uid=alice)' mail uidNumber \
    | grep -q "^uidNumber: $(id -u alice)$" || return 1
  ldapsearch -x -LLL -H "$H" -D "$LDAP_READER" -w "$(secret ldap_reader)" -b "$LDAP_STAFF" -s base member \
    | grep -q "member: uid=staffer,$LDAP_PEOPLE" || return 1
  ldapsearch -x -LLL -H "$H" -D "$LDAP_READER" -w "$(secret ldap_reader)" -b "$LDAP_GROUPS" \
    '(&(objectClass=posixGroup)(cn=physics))' hpcQuotaBytes | grep -q '^hpcQuotaBytes: 2T$' || return 1
  ldapwhoami -x -H "$H" -D "uid=alice,$LDAP_PEOPLE" -w "$(user_password alice)" | grep -q "uid=alice" || return 1
  if ldapwhoami -x -H "$H" -D "uid=alice,$LDAP_PEOPLE" -w wrong >/dev/null 2>&1; then echo "wrong password accepted"; return 1; fi
  if ldapsearch -x -LLL -H "$H" -b "$LDAP_PEOPLE" '(uid=alice)' uid 2>/dev/null | grep -q '^uid:'; then
    echo "anonymous search allowed"; return 1
  fi
  echo "reader finds alice (uid $(id -u alice)), hpc-staff=staffer and physics' quota; alice binds; wrong password and anonymous search refused"
}

# ------------------------------------------------------------------ OIDC, mail, Apache
sm_oidc() {
  "$SYS_PY" "$STACK_D/smoke_checks.py" oidc "$OIDC_ISSUER" userportal "$(secret oidc_client)" \
    "http://127.0.0.1:$P_APACHE/oidc/callback/" staffer "$(user_password staffer)" hpc-staff
}

sm_mail() { "$SYS_PY" "$STACK_D/smoke_checks.py" mail 127.0.0.1 "$P_SMTP" "$D/maildir"; }

sm_apache() {
  case $(apache_state) in enabled) ;; *) echo "apache not started (see status)"; return 1 ;; esac
  local base=http://127.0.0.1:$P_APACHE code
  code=$(curl -s -o "$L/smoke-apache-health.out" -w '%{http_code}' "$base/health/")
  echo "GET /health/ -> $code"
  [ "$code" = 200 ] || { head -c 400 "$L/smoke-apache-health.out"; return 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base/")
  echo "GET / (no header) -> $code"
  [ "$code" = 302 ] || return 1
  code=$(curl -s -o "$L/smoke-apache-home.out" -w '%{http_code}' -H 'X-Test-Remote-User: alice@example.org' \
    -H 'X-Test-Affiliation: member@example.org' "$base/")
  echo "GET / as alice@example.org -> $code"
  [ "$code" = 200 ] && grep -q -i alice "$L/smoke-apache-home.out" || return 1
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base/secure/")
  echo "GET /secure/ (no header) -> $code"
  [ "$code" = 403 ] || return 1
  # a static file through WhiteNoise
  local css; css=$(grep -o '/static/[^"]*\.css' "$L/smoke-apache-home.out" | head -1 || true)
  if [ -n "$css" ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' "$base$css"); echo "GET $css -> $code"
    [ "$code" = 200 ] || return 1
  fi
  echo "health 200, / redirects to login, header login as alice works, /secure needs the header${css:+, static 200}"
}

cmd_smoke() {
  local t0; t0=$(now)
  [ -s "$PORTAL_ENV" ] || die "the stack is not up (no $PORTAL_ENV)"
  log "smoke checks against $S"
  check "slurm: sinfo: gpu01 and cpu01 up, not down/drained" sm_sinfo
  check "slurm: sbatch (GPU) + sacct; dave rejected" sm_sbatch_sacct
  check "slurm: sacctmgr show/add/modify/delete" sm_sacctmgr
  check "mariadb: portal_ro SELECTs, cannot CREATE" sm_reader
  check "mariadb: portal owns userportal, test_userportal*" sm_portal_db
  check "slurmrestd: JWT (scontrol token, HS256 key)" sm_restd
  check "prometheus: backfilled series + recording rules" sm_prometheus
  check "libvirt: guests, exporter with nova labels, scraped" sm_libvirt
  check "redis: ping, set/get on db $REDIS_DB" sm_redis
  check "celery: worker answers, beat runs" sm_celery
  check "ssh: via the jump host to the node" sm_ssh
  check "ldap: search as reader, bind as alice" sm_ldap
  check "oidc: discovery + code flow + userinfo groups" sm_oidc
  check "mail: SMTP to aiosmtpd, read back from Maildir" sm_mail
  check "apache: mod_wsgi portal + Shibboleth headers" sm_apache
  if [ "$SMOKE_FAILS" = 0 ]; then
    log "SMOKE PASSED ($(since "$t0")s)"
  else
    log "SMOKE FAILED: $SMOKE_FAILS check(s) failed ($(since "$t0")s)"
    return 1
  fi
}
