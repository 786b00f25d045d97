# shellcheck shell=bash
# libvirt: a real libvirtd running small real guests (QEMU; TCG when there is no usable KVM) whose
# domain XML carries nova's metadata (<nova:instance>, the OpenStack project, user and flavor), and
# Debian's prometheus-libvirt-exporter on 127.0.0.1:9177, scraped by the stack's Prometheus (job
# "libvirt"). The cloudstats module reads those series.
#
# libvirtd runs unprivileged in session mode (qemu:///session) as the system user portal-vm, with
# every directory in the state dir: XDG_RUNTIME_DIR=run/libvirt (sockets, qemu pid files),
# XDG_CONFIG_HOME=etc/libvirt (libvirtd.conf, qemu.conf, the domain definitions), HOME=data/libvirt
# (disk images, qemu logs). Nothing goes to /etc/libvirt, /var/lib/libvirt or /run/libvirt.
# The guests: Debian's cloud kernel (fetched by `install` into vm-guest/, kept by reset) and an
# initramfs built at `up` from busybox-static, the kernel's virtio modules and vm_guest_init; they
# boot in a few seconds without KVM. Their taps hang on the bridge uportal-vmbr0, which has no
# address (the host stays loopback-only): the guests ping each other, for the network series.
#
# PORTAL_STACK_LIBVIRT: auto (default) = start it; when it cannot start (no qemu, no kernel...),
# warn and go on without it, except with CI=true, where it is required. yes = required. no = off.

LV_USER=portal-vm
LV_HOME=$D/libvirt          # HOME: images, qemu logs (XDG_CACHE_HOME), XDG_DATA_HOME
LV_RUN=$R/libvirt           # XDG_RUNTIME_DIR: libvirt-sock, qemu/run/<domain>.pid
LV_CONF=$E/libvirt          # XDG_CONFIG_HOME: libvirt/{libvirtd,qemu}.conf, libvirt/qemu/<domain>.xml
LV_IMAGES=$LV_HOME/images
VM_GUEST_DIR=$S/vm-guest    # vmlinuz + modules/*.ko of Debian's cloud kernel (install)
VM_KERNEL_PKG=linux-image-cloud-amd64
VM_BRIDGE=uportal-vmbr0
VM_MODULES="virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev virtio_blk virtio_net net_failover failover virtio_balloon"
LIBVIRT_URI=qemu:///session

# The guests, as nova would define them. Projects and users are the stack's (docs/stack.md):
# physics (alice, bob, staffer) and chem (bob, carol).
# domain uuid name flavor vcpus mem_mib user project busy_ms ip peer
vm_domains() {
  cat <<'DOMAINS'
instance-00000001 5b2a6f2e-1c1d-4a8e-9c55-0f6f3b1e0a01 web-1 c2-128m 2 128 alice physics 1000 10.16.0.1 10.16.0.2
instance-00000002 7c3b8e1f-2d4a-4b6c-8e9f-1a2b3c4d5e02 db-1 c1-96m 1 96 carol chem 400 10.16.0.2 10.16.0.1
instance-00000003 9d4c0a2b-3e5f-4a7d-b0c1-2d3e4f5a6b03 idle-1 c1-96m 1 96 bob physics 0 10.16.0.3 -
DOMAINS
}
# OpenStack ids of the projects and users (nova writes them beside the names)
vm_owner_uuid() { printf '%s' "$1" | sha256sum | cut -c1-32; }

libvirt_mode() {
  local mode=${PORTAL_STACK_LIBVIRT:-auto}
  case $mode in
    yes|no) echo "$mode" ;;
    auto) if [ "${CI:-false}" = true ]; then echo yes; else echo auto; fi ;;
    *) die "PORTAL_STACK_LIBVIRT=$mode: use auto, yes or no" ;;
  esac
}

# A command as portal-vm with the session daemon's environment. Both programs exec, so the pid
# bg_start records is the command's.
LV_AS=(setpriv --reuid="$LV_USER" --regid="$LV_USER" --init-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin
  HOME="$LV_HOME" XDG_RUNTIME_DIR="$LV_RUN" XDG_CONFIG_HOME="$LV_CONF" XDG_CACHE_HOME="$LV_HOME/cache"
  XDG_DATA_HOME="$LV_HOME/share")
lv_run() { "${LV_AS[@]}" "$@"; }
lv_virsh() { lv_run virsh -q -c "$LIBVIRT_URI" "$@"; }

# The portal's cloud project members (CLOUDSTATS_MEMBERSHIP=file, TrailblazingTurtle's YAML): the
# members of the LDAP groups of the guests' projects, so the file and the ldap sources agree.
write_cloud_projects() {
  local out=$E/portal/cloud-projects.yaml group _gid members _rest project
  {
    echo "# Written by scripts/stack: the members of the guests' OpenStack projects."
    echo "projects:"
    while read -r group _gid members _rest; do
      for project in $(vm_domains | awk '{print $8}' | sort -u); do
        [ "$project" = "$group" ] || continue
        printf '  %s:\n    members: [%s]\n' "$group" "${members//,/, }"
      done
    done < <(ldap_quota_groups)
  } > "$out.tmp"
  chgrp www-data "$out.tmp"; chmod 640 "$out.tmp"; mv -f "$out.tmp" "$out"
}

# ------------------------------------------------------------------ install: the guest kernel
vm_guest_ok() {
  [ -s "$VM_GUEST_DIR/vmlinuz" ] && [ -s "$VM_GUEST_DIR/modules/virtio_blk.ko" ] && [ -s "$VM_GUEST_DIR/package" ]
}

# Debian's cloud kernel package, downloaded (not installed: the machine keeps its own kernel) and
# unpacked: vmlinuz and the virtio modules the guests load (uncompressed; .ko.xz are decompressed).
install_vm_guest() {
  if vm_guest_ok; then log "  vm guest: $(cat "$VM_GUEST_DIR/package") present"; return 0; fi
  local t0 pkg tmp m f; t0=$(now)
  pkg=$(apt-cache depends "$VM_KERNEL_PKG" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
  if [ -z "$pkg" ]; then apt-get update -qq; pkg=$(apt-cache depends "$VM_KERNEL_PKG" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'); fi
  [ -n "$pkg" ] || { libvirt_problem "apt knows no $VM_KERNEL_PKG"; return 0; }
  tmp=$(mktemp -d); chmod 755 "$tmp"
  id _apt >/dev/null 2>&1 && chown _apt "$tmp"   # apt-get download drops to _apt
  if ! (cd "$tmp" && apt-get download -q "$pkg") > "$S/vm-guest-download.log" 2>&1; then
    rm -rf "$tmp"; libvirt_problem "apt-get download $pkg failed ($S/vm-guest-download.log)"; return 0
  fi
  rm -rf "$VM_GUEST_DIR"; mkdir -p "$VM_GUEST_DIR/modules"
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  cp "$tmp"/root/boot/vmlinuz-* "$VM_GUEST_DIR/vmlinuz"
  for m in $VM_MODULES; do
    f=$(find "$tmp/root/lib/modules" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
    [ -n "$f" ] || { rm -rf "$tmp"; libvirt_problem "$pkg has no module $m"; return 0; }
    case $f in
      *.xz) xz -dc "$f" > "$VM_GUEST_DIR/modules/$m.ko" ;;
      *) cp "$f" "$VM_GUEST_DIR/modules/$m.ko" ;;
    esac
  done
  echo "$pkg" > "$VM_GUEST_DIR/package"
  chmod -R a+rX "$VM_GUEST_DIR"
  rm -rf "$tmp"
  log "  vm guest: $pkg (vmlinuz + virtio modules) in $(since "$t0")s"
}

# libvirt_problem <why>: die when libvirt is required (CI=true or PORTAL_STACK_LIBVIRT=yes), else warn
libvirt_problem() {
  if [ "$(libvirt_mode)" = yes ]; then
    die "libvirt: $1 (required: CI=true or PORTAL_STACK_LIBVIRT=yes; PORTAL_STACK_LIBVIRT=no turns it off)"
  fi
  warn "libvirt: $1: the stack goes on without its VMs (PORTAL_STACK_LIBVIRT=no turns them off quietly)"
}

# ------------------------------------------------------------------ up
# lv_fail <why>: remember why for status and the warning, return 1
lv_fail() { LV_WHY=$1; return 1; }

lv_prepare() {
  have libvirtd && have virsh && have qemu-system-x86_64 && have prometheus-libvirt-exporter \
    || lv_fail "libvirtd, virsh, qemu-system-x86_64 or prometheus-libvirt-exporter is missing (scripts/stack install)" || return 1
  [ -x /bin/busybox ] || lv_fail "/bin/busybox is missing (busybox-static)" || return 1
  vm_guest_ok || lv_fail "no guest kernel in $VM_GUEST_DIR (scripts/stack install)" || return 1
  if ! id "$LV_USER" >/dev/null 2>&1; then
    useradd -r -M -d "$LV_HOME" -s /usr/sbin/nologin "$LV_USER" || lv_fail "useradd $LV_USER failed" || return 1
  fi
  install -d -o "$LV_USER" -g "$LV_USER" -m 700 "$LV_RUN"
  install -d -o "$LV_USER" -g "$LV_USER" -m 755 "$LV_HOME" "$LV_IMAGES" "$LV_CONF" "$LV_CONF/libvirt"
  # libvirtd logs to stderr (its log file); qemu writes each guest's log under XDG_CACHE_HOME, no virtlogd
  printf '# Written by scripts/stack.\nlog_outputs="3:stderr"\n' > "$LV_CONF/libvirt/libvirtd.conf"
  printf '# Written by scripts/stack.\nstdio_handler = "file"\n' > "$LV_CONF/libvirt/qemu.conf"
  chown "$LV_USER:" "$LV_CONF/libvirt/libvirtd.conf" "$LV_CONF/libvirt/qemu.conf"
  lv_initramfs || return 1
}

# The guests' initramfs: busybox, the virtio modules, /init = vm_guest_init (rebuilt when they change)
lv_initramfs() {
  local out=$LV_IMAGES/initramfs.gz stamp root
  stamp=$(cat "$STACK_D/vm_guest_init" "$VM_GUEST_DIR/package" /bin/busybox | sha256sum | cut -c1-16)
  if [ -s "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/lib/modules"
  cp /bin/busybox "$root/bin/busybox"
  cp "$VM_GUEST_DIR"/modules/*.ko "$root/lib/modules/"
  install -m 755 "$STACK_D/vm_guest_init" "$root/init"
  (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$out.tmp" \
    || { rm -rf "$root"; lv_fail "building the guests' initramfs failed"; return 1; }
  rm -rf "$root"
  install -m 644 "$VM_GUEST_DIR/vmlinuz" "$LV_IMAGES/vmlinuz"
  mv -f "$out.tmp" "$out"; chmod 644 "$out"
  echo "$stamp" > "$out.stamp"
}

lv_tap() { printf 'tap%s' "${1:0:11}"; }   # nova's tap names: "tap" + the first 11 characters of the port id

# The bridge (no address, no IPv6: nothing on the host is reachable from the guests) and one tap per guest
lv_network() {
  local dom uuid _n _f _c _m _u _p _b ip _peer tap
  [ -c /dev/net/tun ] || lv_fail "no /dev/net/tun" || return 1
  # qemu (as portal-vm) opens /dev/net/tun to attach to its tap: Debian's udev makes it 0666, this
  # machine may have no udev
  [ "$(stat -c %a /dev/net/tun)" = 666 ] || chmod 0666 /dev/net/tun
  if ! ip link show "$VM_BRIDGE" >/dev/null 2>&1; then
    ip link add "$VM_BRIDGE" type bridge || lv_fail "cannot create the bridge $VM_BRIDGE" || return 1
  fi
  lv_no_ipv6 "$VM_BRIDGE"
  ip link set "$VM_BRIDGE" up
  while read -r dom uuid _n _f _c _m _u _p _b ip _peer; do
    [ "$ip" != - ] || continue
    tap=$(lv_tap "$uuid")
    if ! ip link show "$tap" >/dev/null 2>&1; then
      ip tuntap add dev "$tap" mode tap user "$LV_USER" || lv_fail "cannot create the tap $tap of $dom" || return 1
    fi
    lv_no_ipv6 "$tap"
    ip link set "$tap" master "$VM_BRIDGE" up
  done < <(vm_domains)
}
lv_no_ipv6() { [ ! -w "/proc/sys/net/ipv6/conf/$1/disable_ipv6" ] || echo 1 > "/proc/sys/net/ipv6/conf/$1/disable_ipv6"; }

lv_daemon() {
  svc_up libvirtd && return 0
  cleanup_stale libvirtd
  rm -f "$LV_RUN/libvirt/libvirt-sock"
  bg_start libvirtd "$L/libvirtd.log" "${LV_AS[@]}" /usr/sbin/libvirtd
  wait_svc 30 libvirtd "$L/libvirtd.log" "libvirtd (session) answering" lv_virsh uri \
    || lv_fail "libvirtd did not start ($L/libvirtd.log)" || return 1
}

# vm_domain_xml <fields of vm_domains>: the domain as nova defines one (type qemu: TCG, no KVM needed)
vm_domain_xml() {
  local dom=$1 uuid=$2 name=$3 flavor=$4 vcpus=$5 mem=$6 user=$7 project=$8 busy=$9 ip=${10} peer=${11}
  local created net="" cmdline="console=ttyS0 quiet panic=-1 vm.busy=$busy"
  created=$(date -u -d "@$(stat -c %Y "$LV_HOME/.created")" '+%F %T')
  if [ "$ip" != - ]; then
    cmdline+=" vm.ip=$ip"
    [ "$peer" = - ] || cmdline+=" vm.peer=$peer"
    net="    <interface type='ethernet'>
      <mac address='fa:16:3e:16:00:${ip##*.}'/>
      <target dev='$(lv_tap "$uuid")' managed='no'/>
      <model type='virtio'/>
    </interface>"
  fi
  cat <<EOF
<domain type='qemu'>
  <name>$dom</name>
  <uuid>$uuid</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:package version="26.2.1"/>
      <nova:name>$name</nova:name>
      <nova:creationTime>$created</nova:creationTime>
      <nova:flavor name="$flavor">
        <nova:memory>$mem</nova:memory>
        <nova:disk>1</nova:disk>
        <nova:swap>0</nova:swap>
        <nova:ephemeral>0</nova:ephemeral>
        <nova:vcpus>$vcpus</nova:vcpus>
      </nova:flavor>
      <nova:owner>
        <nova:user uuid="$(vm_owner_uuid "user:$user")">$user</nova:user>
        <nova:project uuid="$(vm_owner_uuid "project:$project")">$project</nova:project>
      </nova:owner>
      <nova:root type="image" uuid="$(vm_owner_uuid "image:busybox")"/>
    </nova:instance>
  </metadata>
  <memory unit='MiB'>$mem</memory>
  <currentMemory unit='MiB'>$mem</currentMemory>
  <vcpu placement='static'>$vcpus</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$LV_IMAGES/vmlinuz</kernel>
    <initrd>$LV_IMAGES/initramfs.gz</initrd>
    <cmdline>$cmdline</cmdline>
  </os>
  <features>
    <acpi/>
    <apic/>
    <tcg><tb-cache unit='MiB'>32</tb-cache></tcg>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='$LV_IMAGES/$dom.raw'/>
      <target dev='vda' bus='virtio'/>
    </disk>
$net
    <serial type='file'>
      <source path='$LV_HOME/$dom.console'/>
    </serial>
    <memballoon model='virtio'>
      <stats period='10'/>
    </memballoon>
  </devices>
</domain>
EOF
}

# Define every guest (again: the definitions follow this file) and start those that are not running
lv_domains() {
  local fields dom state started=""
  mkdir -p "$LV_CONF/domains"
  [ -e "$LV_HOME/.created" ] || touch "$LV_HOME/.created"   # nova's creationTime of the guests
  while read -r -a fields; do
    dom=${fields[0]}
    vm_domain_xml "${fields[@]}" > "$LV_CONF/domains/$dom.xml"
    if [ ! -e "$LV_IMAGES/$dom.raw" ]; then
      truncate -s 16M "$LV_IMAGES/$dom.raw" && chown "$LV_USER:" "$LV_IMAGES/$dom.raw"
    fi
    state=$(lv_virsh domstate "$dom" 2>/dev/null || true)
    if [ "$state" != running ]; then
      lv_virsh define "$LV_CONF/domains/$dom.xml" > /dev/null 2>> "$L/libvirtd.log" \
        || lv_fail "virsh define $dom failed ($L/libvirtd.log)" || return 1
      lv_virsh start "$dom" > /dev/null 2>> "$L/libvirtd.log" \
        || lv_fail "virsh start $dom failed ($L/libvirtd.log)" || return 1
      started+=" $dom"
    fi
  done < <(vm_domains)
  [ -z "$started" ] || log "  libvirt        started${started} (booting in the background)"
}

lv_exporter_ready() { curl -sf "http://127.0.0.1:$P_LIBVIRT_EXPORTER/metrics" | grep -q '^libvirt_up 1'; }

lv_exporter() {
  svc_up libvirt-exporter && return 0
  cleanup_stale libvirt-exporter
  if port_open "$P_LIBVIRT_EXPORTER"; then
    lv_fail "port 127.0.0.1:$P_LIBVIRT_EXPORTER is taken by pid $(port_owner "$P_LIBVIRT_EXPORTER")"; return 1
  fi
  bg_start libvirt-exporter "$L/libvirt-exporter.log" "${LV_AS[@]}" prometheus-libvirt-exporter \
    --web.listen-address="127.0.0.1:$P_LIBVIRT_EXPORTER" --libvirt.uri="$LIBVIRT_URI" --libvirt.export-nova-metadata
  wait_svc 30 libvirt-exporter "$L/libvirt-exporter.log" "libvirt exporter (libvirt_up 1)" lv_exporter_ready \
    || lv_fail "the exporter does not report libvirt_up 1 ($L/libvirt-exporter.log)" || return 1
}

start_libvirt() {
  local t0; t0=$(now)
  LV_WHY=""
  rm -f "$D/libvirt.failed"
  if [ "$(libvirt_mode)" = no ]; then
    log "  libvirt        off (PORTAL_STACK_LIBVIRT=no)"
    return 0
  fi
  if lv_prepare && lv_network && lv_daemon && lv_domains && lv_exporter; then
    took libvirt "$t0"
    return 0
  fi
  echo "$LV_WHY" > "$D/libvirt.failed"
  libvirt_problem "${LV_WHY:-did not start}"
}

# ------------------------------------------------------------------ down
# qemu daemonizes (its own session): destroy the guests through libvirtd, then stop what a crashed
# libvirtd left running by the pid files libvirt wrote for it
stop_libvirt() {
  local dom pidf pid
  stop_svc libvirt-exporter 10
  if svc_up libvirtd; then
    for dom in $(lv_virsh list --name 2>/dev/null); do
      lv_virsh destroy "$dom" > /dev/null 2>&1 || true
    done
  fi
  stop_svc libvirtd 15
  for pidf in "$LV_RUN"/libvirt/qemu/run/*.pid; do
    [ -s "$pidf" ] || continue
    pid=$(tr -dc 0-9 < "$pidf")
    if [ -n "$pid" ] && pid_alive "$pid" && grep -qa "guest=" "/proc/$pid/cmdline" 2>/dev/null; then
      warn "libvirt: stopping the guest qemu left by libvirtd (pid $pid, $pidf)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  local fields
  while read -r -a fields; do
    ip link del "$(lv_tap "${fields[1]}")" 2>/dev/null || true
  done < <(vm_domains)
  ip link del "$VM_BRIDGE" 2>/dev/null || true
}

# ------------------------------------------------------------------ status
# libvirt_status: its lines; returns 1 only when it should run and does not
libvirt_status() {
  if [ "$(libvirt_mode)" = no ]; then status_line libvirt skipped "PORTAL_STACK_LIBVIRT=no"; return 0; fi
  if [ -s "$D/libvirt.failed" ] && [ "$(libvirt_mode)" = auto ]; then
    status_line libvirt skipped "WARNING: $(cat "$D/libvirt.failed")"; return 0
  fi
  local bad=0 n total
  svc_status libvirtd "" || bad=1
  if svc_status libvirt-exporter "$P_LIBVIRT_EXPORTER"; then
    n=$({ curl -sf "http://127.0.0.1:$P_LIBVIRT_EXPORTER/metrics" || true; } | grep -c '^libvirt_domain_info_virtual_cpus{' || true)
    total=$(vm_domains | wc -l)
    if [ "$n" = "$total" ]; then status_line guests running "$n of $total reported by the exporter"
    else status_line guests down "$n of $total reported by the exporter"; bad=1; fi
  else
    bad=1
  fi
  return "$bad"
}
