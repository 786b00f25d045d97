# shellcheck shell=bash
# install: apt packages (only the missing ones, with a policy-rc.d that keeps postinst from
# starting daemons), the stack venv (aiosmtpd), the Apache venv (Debian's python3 + the
# portal's requirements.txt), oidc-provider from npm and the VM guests' kernel (libvirt.sh).
# bubblewrap: the GPU node's job sandbox (jobqueue/executors/sandbox.py); lxc and sudo: the
# disposable node (lxc.sh).
# Every step is skipped when done. (`daemon` satisfies prometheus-libvirt-exporter's
# "daemon | systemd-sysv" without installing systemd as /sbin/init.)

APT_PACKAGES="mariadb-server mariadb-client munge slurmctld slurmd slurmdbd slurm-client slurmrestd
slurm-wlm-jwt-plugin prometheus prometheus-node-exporter openssh-server openssh-client redis-server redis-tools apache2
apache2-utils libapache2-mod-wsgi-py3 python3-venv python3-dev slapd ldap-utils libmariadb-dev
libldap2-dev libsasl2-dev pkg-config gcc curl jq procps iproute2 postgresql postgresql-client
libvirt-daemon libvirt-clients qemu-system-x86 prometheus-libvirt-exporter busybox-static daemon xz-utils
bubblewrap lxc sudo"
STACK_PIP="aiosmtpd==1.4.6"
OIDC_PROVIDER_VERSION=9.13.3

missing_apt() {
  local p out=""
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || out="$out $p"
  done
  printf '%s' "${out# }"
}

install_apt() {
  local miss t0; miss=$(missing_apt)
  # node 20 (nodesource) is on this image; elsewhere Debian's nodejs (18) + npm will do
  have node || miss="${miss:+$miss }nodejs npm"
  if [ -z "$miss" ]; then log "  apt: all packages present"; return 0; fi
  t0=$(now)
  log "  apt: installing $miss"
  export DEBIAN_FRONTEND=noninteractive
  # Keep postinst scripts from starting daemons (they would take 3306, 6379, 22, 80, 9090, 389).
  local made_policy=0
  if [ ! -x /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# written by userportal scripts/stack install\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  # slapd: no Debian DIT and no /etc/ldap/slapd.d; the stack runs its own slapd.conf
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $miss > "$S/apt-install.log" 2>&1 \
    || { tail -n 30 "$S/apt-install.log" >&2; die "apt-get install failed (log: $S/apt-install.log)"; }
  [ "$made_policy" = 1 ] && log "  apt: left /usr/sbin/policy-rc.d (exit 101) in place"
  log "  apt: done in $(since "$t0")s"
}

install_stack_venv() {
  if [ -x "$STACK_VENV/bin/python" ] && "$STACK_VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    log "  pip: stack venv present ($STACK_VENV)"; return 0
  fi
  local t0; t0=$(now)
  [ -x "$STACK_VENV/bin/python" ] || "$SYS_PY" -m venv "$STACK_VENV"
  # shellcheck disable=SC2086
  "$STACK_VENV/bin/pip" install -q --disable-pip-version-check $STACK_PIP > "$S/pip-stack.log" 2>&1 \
    || { tail -n 30 "$S/pip-stack.log" >&2; die "pip install into $STACK_VENV failed"; }
  log "  pip: stack venv ($STACK_PIP) in $(since "$t0")s"
}

requirements_stamp() { { sha256sum < "$REPO/requirements.txt"; echo "$SYS_PY"; } | sha256sum | cut -c1-16; }

apache_venv_ok() {
  [ -f "$REPO/requirements.txt" ] && [ -x "$APACHE_VENV/bin/python" ] \
    && [ "$(cat "$APACHE_VENV/.stack-stamp" 2>/dev/null)" = "$(requirements_stamp)" ]
}

install_apache_venv() {
  if [ ! -f "$REPO/requirements.txt" ]; then
    warn "no $REPO/requirements.txt yet: skipping the Apache venv (Apache will not be started)"
    return 0
  fi
  if apache_venv_ok; then log "  pip: Apache venv up to date ($APACHE_VENV)"; return 0; fi
  local t0; t0=$(now)
  # mod_wsgi embeds Debian's python 3.11.2, so the venv must come from /usr/bin/python3
  [ -x "$APACHE_VENV/bin/python" ] || "$SYS_PY" -m venv "$APACHE_VENV"
  "$APACHE_VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO/requirements.txt" > "$S/pip-apache.log" 2>&1 \
    || { tail -n 30 "$S/pip-apache.log" >&2; die "pip install -r requirements.txt into $APACHE_VENV failed"; }
  requirements_stamp > "$APACHE_VENV/.stack-stamp"
  log "  pip: Apache venv (requirements.txt) in $(since "$t0")s"
}

oidc_installed() {
  [ -f "$S/oidc/node_modules/oidc-provider/package.json" ]
}

install_oidc() {
  if oidc_installed; then log "  npm: oidc-provider present"; return 0; fi
  local t0 ver=$OIDC_PROVIDER_VERSION major; t0=$(now)
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$major" -ge 20 ] || ver=8.8.1   # 9.x needs a current Node; Debian 12's nodejs is 18
  mkdir -p "$S/oidc"
  cat > "$S/oidc/package.json" <<EOF
{ "name": "userportal-stack-op", "private": true, "type": "module",
  "dependencies": { "oidc-provider": "$ver" } }
EOF
  (cd "$S/oidc" && npm install --no-audit --no-fund --loglevel=error > "$S/npm-install.log" 2>&1) \
    || { tail -n 30 "$S/npm-install.log" >&2; die "npm install oidc-provider failed"; }
  log "  npm: oidc-provider $ver in $(since "$t0")s"
}

cmd_install() {
  local t0; t0=$(now)
  mkdir -p "$S"; chmod 755 "$S"
  log "install into $S"
  install_apt
  install_stack_venv
  install_oidc
  install_apache_venv
  [ "$(libvirt_mode)" = no ] || install_vm_guest
  log "install done in $(since "$t0")s"
}

# Called by up: install only what is missing (a no-op on a prepared machine).
ensure_installed() {
  local miss; miss=$(missing_apt)
  if [ -n "$miss" ] || ! have node || [ ! -x "$STACK_VENV/bin/python" ] || ! oidc_installed \
     || { [ -f "$REPO/requirements.txt" ] && ! apache_venv_ok; } \
     || { [ "$(libvirt_mode)" != no ] && ! vm_guest_ok; }; then
    log "some parts are not installed yet: running install first"
    cmd_install
  fi
}
