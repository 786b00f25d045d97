# shellcheck shell=bash
# lxc: a disposable job-queue node, restarted after every job (JOBQUEUE_NODES_DISPOSABLE with
# JOBQUEUE_LXC_RESTART), as a site runs its GPU nodes in LXC containers it resets between jobs.
#
# Debian's lxc runs the container jqlxc-gpu03: its own hostname, pid and mount namespaces (the host's
# network, as the other stack services), and a root file system that is the host's / under an
# overlay whose upper layer is a tmpfs: whatever a job writes or leaves running is gone when the
# container restarts. Its only program is an sshd on 127.0.0.1:$P_SSH_LXC (the stack's node keys
# and users), reached through the jump host like gpu01.
#
# The restart: $S/bin/lxc-node-restart <container>, run by the ssh user `jobqueue` on the jump host
# through sudo (one sudoers line for that script only), as JOBQUEUE_LXC_COMMAND says. It stops the
# container (every process in it), drops the overlay's upper layer, mounts a fresh one, starts the
# container again and waits for its sshd. tests/integration/test_jobqueue_lxc_stack.py drives it.

LXC_NODE=gpu03
LXC_NAME=jqlxc-$LXC_NODE
LXC_DIR=$S/lxc                  # lxc -P: the container's config and log
LXC_BIN=$S/bin/lxc-node-restart
LXC_SUDOERS=/etc/sudoers.d/userportal-stack-lxc

write_lxc_files() {
  local d=$E/ssh  # its host key and known_hosts line: write_ssh_files (services.sh)
  install -d -m 755 "$LXC_DIR" "$S/bin"
  sed -e "s/^Port .*/Port $P_SSH_LXC/" -e "s|^HostKey .*|HostKey $d/hostkey_$P_SSH_LXC|" \
    -e "s|^PidFile .*|PidFile none|" "$d/sshd_$P_SSH_NODE.conf" > "$d/sshd_$P_SSH_LXC.conf"
  cat > "$LXC_DIR/$LXC_NAME.conf" <<EOF
# Written by scripts/stack (lxc.sh).
lxc.uts.name = $LXC_NODE
lxc.rootfs.path = dir:$LXC_DIR/rootfs
lxc.net.0.type = none
lxc.mount.auto = proc:mixed
lxc.autodev = 1
lxc.console.path = none
lxc.pty.max = 0
lxc.tty.max = 0
lxc.apparmor.profile = unconfined
lxc.log.file = $L/lxc-$LXC_NODE.log
lxc.log.level = WARN
EOF
  cat > "$LXC_BIN" <<EOF
#!/bin/bash
# Written by scripts/stack (lxc.sh): restart the disposable node \$1 with a fresh root file system.
set -euo pipefail
[ "\${1:-}" = "$LXC_NAME" ] || { echo "lxc-node-restart: unknown container '\${1:-}' (only $LXC_NAME)" >&2; exit 2; }
lxc-stop -n "$LXC_NAME" -P "$LXC_DIR" -k >/dev/null 2>&1 || true
for m in "$LXC_DIR/rootfs" "$LXC_DIR/layer"; do mountpoint -q "\$m" && umount -l "\$m"; done
mkdir -p "$LXC_DIR/layer" "$LXC_DIR/rootfs"
mount -t tmpfs -o size=512m,mode=755 lxc-layer "$LXC_DIR/layer"
mkdir "$LXC_DIR/layer/upper" "$LXC_DIR/layer/work"
mount -t overlay lxc-root -o "lowerdir=/,upperdir=$LXC_DIR/layer/upper,workdir=$LXC_DIR/layer/work" "$LXC_DIR/rootfs"
lxc-execute -d -n "$LXC_NAME" -P "$LXC_DIR" -f "$LXC_DIR/$LXC_NAME.conf" -- \\
  /bin/sh -c 'mkdir -p /run/sshd && exec /usr/sbin/sshd -D -f $E/ssh/sshd_$P_SSH_LXC.conf -E $L/sshd-$P_SSH_LXC.log'
for _ in \$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$P_SSH_LXC) 2>/dev/null && exit 0; sleep 0.1; done
echo "lxc-node-restart: $LXC_NAME's sshd does not answer on $P_SSH_LXC" >&2
exit 1
EOF
  chmod 755 "$LXC_BIN"
  printf 'jobqueue ALL=(root) NOPASSWD: %s\n' "$LXC_BIN" > "$LXC_SUDOERS.tmp"
  chmod 440 "$LXC_SUDOERS.tmp" && mv -f "$LXC_SUDOERS.tmp" "$LXC_SUDOERS"
}

lxc_running() { lxc-info -n "$LXC_NAME" -P "$LXC_DIR" -s 2>/dev/null | grep -q RUNNING; }

start_lxc() {
  local t0; t0=$(now)
  if ! have lxc-execute || ! have sudo; then
    [ "${CI:-false}" = true ] && die "lxc: lxc-execute or sudo is missing (scripts/stack install)"
    warn "lxc: not installed; the disposable node $LXC_NODE is off"
    return 0
  fi
  write_lxc_files
  if ! lxc_running; then
    check_port_free "$P_SSH_LXC" "the LXC node's sshd"
    "$LXC_BIN" "$LXC_NAME" || { tail_log "$L/lxc-$LXC_NODE.log"; die "the LXC node $LXC_NAME did not start"; }
  fi
  wait_for 15 "$L/sshd-$P_SSH_LXC.log" "ssh to the LXC node through the jump host" \
    ssh -F "$E/ssh/client_config" -l jobqueue "$LXC_NODE" true || die "ssh to the LXC node does not work"
  took "lxc $LXC_NODE" "$t0"
}

stop_lxc() {
  have lxc-stop || return 0
  lxc_running && lxc-stop -n "$LXC_NAME" -P "$LXC_DIR" -k >/dev/null 2>&1 && printf '  stopped %-14s\n' "lxc-$LXC_NODE"
  local m
  for m in "$LXC_DIR/rootfs" "$LXC_DIR/layer"; do mountpoint -q "$m" && umount -l "$m"; done
  return 0
}
