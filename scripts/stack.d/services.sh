# shellcheck shell=bash
# Redis, two sshd (jump host + GPU node), slapd, the OpenID Connect provider, aiosmtpd.

# ------------------------------------------------------------------ Redis
redis_mode() {
  if [ -s "$D/redis.mode" ]; then cat "$D/redis.mode"; return; fi
  case ${PORTAL_STACK_REDIS:-auto} in
    system|private) echo "$PORTAL_STACK_REDIS"; return ;;
  esac
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then echo system; else echo private; fi
}
redis_port() { if [ "$(redis_mode)" = system ]; then echo 6379; else echo "$P_REDIS_PRIVATE"; fi; }
REDIS_DB=5

start_redis() {
  local t0 mode; t0=$(now); mode=$(redis_mode)
  echo "$mode" > "$D/redis.mode"
  if [ "$mode" = system ]; then
    redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG \
      || die "this state dir uses the machine's Redis on 6379, which does not answer (run: scripts/stack reset)"
    log "  redis          the machine's server on 127.0.0.1:6379, database $REDIS_DB"
  elif ! svc_up redis; then
    cleanup_stale redis
    check_port_free "$P_REDIS_PRIVATE" redis
    mkdir -p "$E/redis" "$D/redis"
    cat > "$E/redis/redis.conf" <<EOF
bind 127.0.0.1
port $P_REDIS_PRIVATE
protected-mode yes
daemonize yes
pidfile $R/redis.pid
logfile $L/redis.log
dir $D/redis
save ""
appendonly no
EOF
    rm -f "$R/redis.pid"
    redis-server "$E/redis/redis.conf" || { tail_log "$L/redis.log"; die "redis did not start"; }
    wait_for 10 "$L/redis.log" "redis pid file" test -s "$R/redis.pid" || die "redis did not start"
    record redis
    wait_for 10 "$L/redis.log" "redis ping" sh -c "redis-cli -h 127.0.0.1 -p $P_REDIS_PRIVATE ping | grep -q PONG" \
      || die "redis does not answer"
  fi
  took redis "$t0"
}

stop_redis() { [ "$(redis_mode)" = private ] && stop_svc redis 10; return 0; }

# ------------------------------------------------------------------ sshd x3 (two GPU nodes + the jump host)
SSH_USERS="alice bob carol dave staffer jobqueue"

write_ssh_files() {
  local d=$E/ssh p u
  install -d -m 755 "$d" "$d/keys" "$d/authorized_keys"
  chmod 700 "$d/keys"
  for p in "$P_SSH_NODE" "$P_SSH_NODE2" "$P_SSH_JUMP" "$P_SSH_LXC"; do  # (LXC: lxc.sh's node)
    [ -s "$d/hostkey_$p" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey_$p" -C "userportal-stack-$p"
  done
  for u in $SSH_USERS; do
    [ -s "$d/keys/${u}_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/keys/${u}_ed25519" -C "$u@userportal-stack"
    # root-owned, world-readable: sshd runs with StrictModes no (the state dir lives under /tmp)
    install -m 644 "$d/keys/${u}_ed25519.pub" "$d/authorized_keys/$u"
  done
  for p in "$P_SSH_NODE" "$P_SSH_NODE2" "$P_SSH_JUMP"; do
    cat > "$d/sshd_$p.conf" <<EOF
# Written by scripts/stack.
Port $p
ListenAddress 127.0.0.1
HostKey $d/hostkey_$p
PidFile $R/sshd-$p.pid
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes no
AuthorizedKeysFile $d/authorized_keys/%u
AllowUsers $SSH_USERS
X11Forwarding no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
Subsystem sftp internal-sftp
SetEnv SLURM_CONF=$SLURM_CONF
EOF
  done
  printf 'AllowTcpForwarding no\n' >> "$d/sshd_$P_SSH_NODE.conf"
  printf 'AllowTcpForwarding no\n' >> "$d/sshd_$P_SSH_NODE2.conf"
  printf 'AllowTcpForwarding yes\nPermitOpen 127.0.0.1:%s localhost:%s 127.0.0.1:%s localhost:%s 127.0.0.1:%s\n' \
    "$P_SSH_NODE" "$P_SSH_NODE" "$P_SSH_NODE2" "$P_SSH_NODE2" "$P_SSH_LXC" >> "$d/sshd_$P_SSH_JUMP.conf"
  printf '[127.0.0.1]:%s %s\n[127.0.0.1]:%s %s\n[127.0.0.1]:%s %s\n[127.0.0.1]:%s %s\n' \
    "$P_SSH_LXC" "$(cut -d' ' -f1,2 "$d/hostkey_$P_SSH_LXC.pub")" \
    "$P_SSH_NODE" "$(cut -d' ' -f1,2 "$d/hostkey_$P_SSH_NODE.pub")" \
    "$P_SSH_NODE2" "$(cut -d' ' -f1,2 "$d/hostkey_$P_SSH_NODE2.pub")" \
    "$P_SSH_JUMP" "$(cut -d' ' -f1,2 "$d/hostkey_$P_SSH_JUMP.pub")" > "$d/known_hosts"
  # ssh -F client_config -l alice node  (the jump hop logs in as the same user)
  cat > "$d/client_config" <<EOF
# Written by scripts/stack. Use: ssh -F $d/client_config -l <user> node
Host jump
  HostName 127.0.0.1
  Port $P_SSH_JUMP
Host node gpu01
  HostName 127.0.0.1
  Port $P_SSH_NODE
  ProxyCommand ssh -F $d/client_config -l %r -W %h:%p jump
Host gpu02
  HostName 127.0.0.1
  Port $P_SSH_NODE2
  ProxyCommand ssh -F $d/client_config -l %r -W %h:%p jump
Host gpu03
  HostName 127.0.0.1
  Port $P_SSH_LXC
  ProxyCommand ssh -F $d/client_config -l %r -W %h:%p jump
Host *
  User jobqueue
  IdentityFile $d/keys/%r_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $d/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
EOF
}

start_ssh() {
  local t0 p; t0=$(now)
  write_ssh_files
  install -d -m 755 /run/sshd   # privilege separation dir, normally made by systemd-tmpfiles
  for p in "$P_SSH_NODE" "$P_SSH_NODE2" "$P_SSH_JUMP"; do
    if ! svc_up "sshd-$p"; then
      cleanup_stale "sshd-$p"
      check_port_free "$p" "sshd $p"
      rm -f "$R/sshd-$p.pid"
      /usr/sbin/sshd -f "$E/ssh/sshd_$p.conf" -E "$L/sshd-$p.log" || { tail_log "$L/sshd-$p.log"; die "sshd $p did not start"; }
      wait_for 10 "$L/sshd-$p.log" "sshd $p pid file" test -s "$R/sshd-$p.pid" || die "sshd $p did not start"
      record "sshd-$p"
    elif [ "$p" = "$P_SSH_JUMP" ]; then
      kill -HUP "$(svc_pid "sshd-$p")"   # a running jump host re-reads PermitOpen (gpu02 was added later)
    fi
  done
  wait_for 15 "$L/sshd-$P_SSH_JUMP.log $L/sshd-$P_SSH_NODE.log" "ssh through the jump host" \
    ssh -F "$E/ssh/client_config" -l jobqueue node true || die "ssh through the jump host does not work"
  wait_for 15 "$L/sshd-$P_SSH_JUMP.log $L/sshd-$P_SSH_NODE2.log" "ssh through the jump host to gpu02" \
    ssh -F "$E/ssh/client_config" -l jobqueue gpu02 true || die "ssh through the jump host to gpu02 does not work"
  took sshd "$t0"
}

stop_ssh() { stop_svc "sshd-$P_SSH_JUMP" 5; stop_svc "sshd-$P_SSH_NODE" 5; stop_svc "sshd-$P_SSH_NODE2" 5; }

# ------------------------------------------------------------------ OpenLDAP slapd (own config and db)
LDAP_BASE="dc=example,dc=org"
LDAP_PEOPLE="ou=people,$LDAP_BASE"
LDAP_GROUPS="ou=groups,$LDAP_BASE"
LDAP_READER="cn=portal-reader,ou=services,$LDAP_BASE"
LDAP_STAFF="cn=hpc-staff,$LDAP_GROUPS"

user_password() { printf '%s-pw' "$1"; }   # the stack's users: alice -> alice-pw (docs/stack.md)

# The groups that own files in Robinhood (robinhood.sh), as posixGroup entries with the quota
# attributes of hpc-quota.schema (QUOTAS_SOURCE=ldap); "-": no such attribute (the portal's default).
# group gidNumber members bytes inodes nearline_bytes
ldap_quota_groups() {
  cat <<'GROUPS'
physics 6001 alice,bob,staffer 2T 1000000 10T
chem 6002 bob,carol 1.5T 600000 -
staff 6003 staffer,jobqueue 500G - 1T
GROUPS
}

write_ldap_files() {
  local d=$E/ldap u g gid members bytes inodes nearline
  mkdir -p "$d"
  ssha() { slappasswd -h '{SSHA}' -s "$1"; }
  install -m 644 "$STACK_D/hpc-quota.schema" "$d/hpc-quota.schema"
  cat > "$d/slapd.conf" <<EOF
# Written by scripts/stack: a private slapd, independent of /etc/ldap.
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include $d/hpc-quota.schema
pidfile  $R/slapd.pid
argsfile $R/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
loglevel stats
logfile $L/slapd.log
sizelimit 1000
database mdb
maxsize  104857600
suffix   "$LDAP_BASE"
rootdn   "cn=admin,$LDAP_BASE"
rootpw   $(ssha "$(secret ldap_admin)")
directory $D/ldap
index objectClass,uid,cn,member,memberUid,mail eq
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact="$LDAP_READER" read
  by users read
  by * none
EOF
  {
    printf '%s\n' "dn: $LDAP_BASE" "objectClass: dcObject" "objectClass: organization" "o: Example" "dc: example" ""
    printf '%s\n' "dn: $LDAP_PEOPLE" "objectClass: organizationalUnit" "ou: people" ""
    printf '%s\n' "dn: $LDAP_GROUPS" "objectClass: organizationalUnit" "ou: groups" ""
    printf '%s\n' "dn: ou=services,$LDAP_BASE" "objectClass: organizationalUnit" "ou: services" ""
    printf '%s\n' "dn: $LDAP_READER" "objectClass: organizationalRole" "objectClass: simpleSecurityObject" \
      "cn: portal-reader" "description: read-only bind for the portal" "userPassword: $(ssha "$(secret ldap_reader)")" ""
    local given sn
    for u in $PEOPLE; do
      given=${u^}; sn="Tester"
      printf '%s\n' "dn: uid=$u,$LDAP_PEOPLE" "objectClass: inetOrgPerson" "objectClass: posixAccount" \
        "uid: $u" "cn: $given $sn" "givenName: $given" "sn: $sn" "mail: $u@example.org" \
        "uidNumber: $(id -u "$u")" "gidNumber: $(id -g "$u")" "homeDirectory: /home/$u" "loginShell: /bin/bash" \
        "userPassword: $(ssha "$(user_password "$u")")" ""
    done
    printf '%s\n' "dn: $LDAP_STAFF" "objectClass: groupOfNames" "cn: hpc-staff" \
      "description: HPC staff (portal staff)" "member: uid=staffer,$LDAP_PEOPLE" ""
    printf '%s\n' "dn: cn=hpc-users,$LDAP_GROUPS" "objectClass: groupOfNames" "cn: hpc-users"
    for u in $PEOPLE; do printf 'member: uid=%s,%s\n' "$u" "$LDAP_PEOPLE"; done
    printf '\n'
    while read -r g gid members bytes inodes nearline; do
      printf '%s\n' "dn: cn=$g,$LDAP_GROUPS" "objectClass: posixGroup" "objectClass: hpcQuotaGroup" \
        "cn: $g" "gidNumber: $gid" "description: project group $g (quotas for QUOTAS_SOURCE=ldap)"
      for u in ${members//,/ }; do printf 'memberUid: %s\n' "$u"; done
      [ "$bytes" = - ] || printf 'hpcQuotaBytes: %s\n' "$bytes"
      [ "$inodes" = - ] || printf 'hpcQuotaInodes: %s\n' "$inodes"
      [ "$nearline" = - ] || printf 'hpcQuotaNearlineBytes: %s\n' "$nearline"
      printf '\n'
    done < <(ldap_quota_groups)
  } > "$d/seed.ldif"
  chmod 600 "$d/seed.ldif" "$d/slapd.conf"
}

start_ldap() {
  local t0; t0=$(now)
  if ! svc_up slapd; then
    cleanup_stale slapd
    check_port_free "$P_LDAP" slapd
    write_ldap_files
    # the directory is rebuilt from seed.ldif on every start (0.1 s): always the same users
    rm -rf "$D/ldap"; install -d -m 700 "$D/ldap"
    slapadd -q -f "$E/ldap/slapd.conf" -l "$E/ldap/seed.ldif" > "$L/slapadd.log" 2>&1 \
      || { tail_log "$L/slapadd.log"; die "slapadd failed"; }
    rm -f "$R/slapd.pid"
    slapd -f "$E/ldap/slapd.conf" -h "ldap://127.0.0.1:$P_LDAP/" -s 0 2>> "$L/slapd.log" \
      || { tail_log "$L/slapd.log"; die "slapd did not start"; }
    wait_for 10 "$L/slapd.log" "slapd pid file" test -s "$R/slapd.pid" || die "slapd did not start"
    record slapd
  fi
  wait_for 10 "$L/slapd.log" "ldapwhoami as the reader" \
    ldapwhoami -x -H "ldap://127.0.0.1:$P_LDAP" -D "$LDAP_READER" -w "$(secret ldap_reader)" || die "slapd does not answer"
  took slapd "$t0"
}

# restart_ldap: slapd alone, its directory rebuilt from a freshly written seed.ldif (after a
# change to write_ldap_files or hpc-quota.schema); the other services keep running.
restart_ldap() {
  stop_svc slapd 10
  start_ldap
}

# ------------------------------------------------------------------ aiosmtpd -> Maildir
start_smtp() {
  local t0; t0=$(now)
  if ! svc_up aiosmtpd; then
    cleanup_stale aiosmtpd
    check_port_free "$P_SMTP" aiosmtpd
    # Maildir needs cur, new and tmp, or aiosmtpd's Mailbox handler fails on the first message
    mkdir -p "$D/maildir/cur" "$D/maildir/new" "$D/maildir/tmp"
    bg_start aiosmtpd "$L/aiosmtpd.log" "$STACK_VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$P_SMTP" \
      -c aiosmtpd.handlers.Mailbox "$D/maildir"
  fi
  wait_svc 15 aiosmtpd "$L/aiosmtpd.log" "the SMTP banner" \
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$P_SMTP && head -c3 <&3 | grep -q 220" || die "aiosmtpd does not answer"
  took aiosmtpd "$t0"
}

# ------------------------------------------------------------------ OpenID Connect provider (npm oidc-provider)
OIDC_ISSUER="http://127.0.0.1:$P_OIDC"
OIDC_REDIRECT_BASES="http://127.0.0.1:8080 http://localhost:8080 http://127.0.0.1:8000 http://localhost:8000 http://127.0.0.1:8001 http://localhost:8001"

write_oidc_config() {
  local d=$E/oidc b redirects="" logouts=""
  install -d -m 700 "$d"
  for b in $OIDC_REDIRECT_BASES; do
    redirects="$redirects\"$b/oidc/callback/\","
    logouts="$logouts\"$b/\","
  done
  (umask 077; cat > "$d/config.json" <<EOF
{
  "issuer": "$OIDC_ISSUER",
  "port": $P_OIDC,
  "cookie_key": "$(secret oidc_cookie)",
  "client": {"client_id": "userportal", "client_secret": "$(secret oidc_client)",
             "redirect_uris": [${redirects%,}], "post_logout_redirect_uris": [${logouts%,}]},
  "accounts": {
    "alice": {"password": "$(user_password alice)", "claims": {"preferred_username": "alice", "name": "Alice Tester",
      "given_name": "Alice", "family_name": "Tester", "email": "alice@example.org", "email_verified": true,
      "groups": ["hpc-users"]}},
    "bob": {"password": "$(user_password bob)", "claims": {"preferred_username": "bob", "name": "Bob Tester",
      "given_name": "Bob", "family_name": "Tester", "email": "bob@example.org", "email_verified": true,
      "groups": ["hpc-users"]}},
    "staffer": {"password": "$(user_password staffer)", "claims": {"preferred_username": "staffer", "name": "Staffer Tester",
      "given_name": "Staffer", "family_name": "Tester", "email": "staffer@example.org", "email_verified": true,
      "groups": ["hpc-staff", "hpc-users"]}}
  }
}
EOF
)
  cp "$STACK_D/oidc_provider.mjs" "$S/oidc/provider.mjs"
}

start_oidc() {
  local t0; t0=$(now)
  if ! svc_up oidc; then
    cleanup_stale oidc
    check_port_free "$P_OIDC" oidc-provider
    write_oidc_config
    bg_start oidc "$L/oidc.log" node "$S/oidc/provider.mjs" "$E/oidc/config.json"
  fi
  wait_svc 20 oidc "$L/oidc.log" "the OIDC discovery document" \
    curl -sf "$OIDC_ISSUER/.well-known/openid-configuration" || die "the OpenID Connect provider does not answer"
  took oidc "$t0"
}

stop_services() {
  stop_svc oidc 5
  stop_svc aiosmtpd 5
  stop_svc slapd 10
  stop_ssh
  stop_redis
}
