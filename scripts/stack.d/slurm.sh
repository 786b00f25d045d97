# shellcheck shell=bash
# munge (a private munged with its own key and socket), slurmdbd, slurmctld, two slurmd
# (gpu01 with fake GPUs of two types, cpu01), slurmrestd with JWT, accounts and users.

MUNGE_SOCKET=$R/munge/munge.socket

# ------------------------------------------------------------------ Unix users
ensure_users() {
  local entry name uid
  for entry in $STACK_USERS; do
    name=${entry%%:*} uid=${entry##*:}
    if ! getent group "$name" >/dev/null; then
      if getent group "$uid" >/dev/null; then groupadd "$name"; else groupadd -g "$uid" "$name"; fi
    fi
    if ! id "$name" >/dev/null 2>&1; then
      if getent passwd "$uid" >/dev/null; then
        warn "uid $uid is taken: creating $name with another uid"
        useradd -m -g "$name" -s /bin/bash "$name"
      else
        useradd -m -u "$uid" -g "$name" -s /bin/bash "$name"
      fi
      log "  created Unix user $name (uid $(id -u "$name"))"
    elif [ "$(id -u "$name")" != "$uid" ]; then
      warn "Unix user $name exists with uid $(id -u "$name"), not $uid: keeping it"
    fi
    # useradd leaves the password '!' (locked); sshd with UsePAM=no then refuses even key logins.
    # The people get a real password (unix_password) for the portal's PAM sign-in; jobqueue has none.
    case " $PEOPLE " in
      *" $name "*)
        case "$(getent shadow "$name" | cut -d: -f2)" in
          '*' | '!'* | '') echo "$name:$(unix_password "$name")" | chpasswd ;;
        esac ;;
      *) if [ "$(getent shadow "$name" | cut -d: -f2)" != '*' ]; then usermod -p '*' "$name"; fi ;;
    esac
  done
  id slurmrestd >/dev/null 2>&1 || useradd -r -M -d /nonexistent -s /usr/sbin/nologin slurmrestd
}

# ------------------------------------------------------------------ munge
start_munge() {
  local t0; t0=$(now)
  install -d -o munge -g munge -m 700 "$E/munge" "$D/munge"
  install -d -o munge -g munge -m 755 "$R/munge"
  if [ ! -s "$E/munge/munge.key" ]; then
    mungekey --create --keyfile="$E/munge/munge.key" >/dev/null 2>&1 \
      || dd if=/dev/urandom of="$E/munge/munge.key" bs=1024 count=1 status=none
    chown munge:munge "$E/munge/munge.key"; chmod 600 "$E/munge/munge.key"
  fi
  if ! svc_up munged; then
    cleanup_stale munged
    rm -f "$R/munge/munged.pid" "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    start-stop-daemon --start --quiet --chuid munge --exec /usr/sbin/munged -- \
      --socket="$MUNGE_SOCKET" --key-file="$E/munge/munge.key" --pid-file="$R/munge/munged.pid" \
      --log-file="$L/munged.log" --seed-file="$D/munge/munged.seed" --num-threads=10 \
      || { tail_log "$L/munged.log"; die "munged did not start"; }
    wait_for 10 "$L/munged.log" "munged pid file" test -s "$R/munge/munged.pid" || die "munged did not start"
    cp "$R/munge/munged.pid" "$R/munged.pid"; record munged
  fi
  wait_for 10 "$L/munged.log" "munge round trip" sh -c "munge -S '$MUNGE_SOCKET' -n </dev/null | unmunge -S '$MUNGE_SOCKET'" \
    || die "munge does not work"
  took munge "$t0"
}

# ------------------------------------------------------------------ configs
# HS256 key shared by slurmctld, slurmdbd and slurmrestd (and, as a copy, the portal)
ensure_jwt_key() {
  mkdir -p "$E/slurm"
  if [ ! -s "$E/slurm/jwt_hs256.key" ]; then
    dd if=/dev/urandom of="$E/slurm/jwt_hs256.key" bs=32 count=1 status=none
  fi
  chown slurm:slurm "$E/slurm/jwt_hs256.key"; chmod 600 "$E/slurm/jwt_hs256.key"
}

slurm_cgroup_v1() {
  [ "${PORTAL_STACK_CGROUP:-auto}" != no ] && [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ] \
    && [ "$(stat -f -c %T /sys/fs/cgroup/memory 2>/dev/null)" = cgroupfs ]
}

write_slurm_conf() {
  local port prolog="" task_plugin memkill
  port=$(db_port)
  # Memory enforcement: with a cgroup v1 memory controller (this sandbox mounts one) task/cgroup
  # gives real OOM kills and the OUT_OF_MEMORY job state. Without it (cgroup v2 needs systemd for
  # Slurm 22.05) jobacct_gather's OverMemoryKill kills the step instead: state FAILED, signal 9.
  if slurm_cgroup_v1; then
    task_plugin=task/cgroup memkill=""
  else
    task_plugin=task/none memkill="JobAcctGatherParams=OverMemoryKill"
  fi
  mkdir -p "$E/slurm"
  setup_prolog   # PROLOG_PROGRAM: PORTAL_STACK_PROLOG, else the job-script uploader (prolog.sh)
  if [ -n "$PROLOG_PROGRAM" ]; then
    [ -x "$PROLOG_PROGRAM" ] || warn "PORTAL_STACK_PROLOG=$PROLOG_PROGRAM is not an executable file"
    prolog="PrologSlurmctld=$PROLOG_PROGRAM"
  fi
  cat > "$E/slurm/slurm.conf" <<EOF
# Written by scripts/stack: a single-machine test cluster. Do not edit, it is rewritten on every up.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$P_SLURMCTLD
SlurmdPort=$P_SLURMD_GPU
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$E/slurm/jwt_hs256.key
# bind to 127.0.0.1 (the SlurmctldHost / NodeAddr address), never to INADDR_ANY
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
StateSaveLocation=$D/slurmctld
SlurmdSpoolDir=$D/slurmd/%n
SlurmctldPidFile=$R/slurmctld.pid
SlurmdPidFile=$R/slurmd-%n.pid
SlurmctldLogFile=$L/slurmctld.log
SlurmdLogFile=$L/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# process tracking without cgroups; memory limits through task/cgroup when a v1 memory controller exists
ProctrackType=proctrack/linuxproc
TaskPlugin=$task_plugin
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
$memkill
AccountingStoreFlags=job_script
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
KillWait=5
MinJobAge=300
PriorityType=priority/multifactor
PriorityWeightQOS=1000
PriorityWeightFairshare=1000
PriorityWeightAge=100
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$P_SLURMDBD
# for auth/munge this is the munged socket used towards slurmdbd (AuthInfo is not used there)
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageEnforce=associations,limits,qos
AccountingStorageTRES=gres/gpu,gres/gpu:a100,gres/gpu:v100
JobCompType=jobcomp/none
GresTypes=gpu
$prolog
# the declared nodes are bigger than this 2-core machine
SlurmdParameters=config_overrides
NodeName=gpu01 NodeAddr=127.0.0.1 NodeHostname=localhost Port=$P_SLURMD_GPU CPUs=8 Boards=1 SocketsPerBoard=2 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=64000 Gres=gpu:a100:2,gpu:v100:2 State=UNKNOWN
NodeName=cpu01 NodeAddr=127.0.0.1 NodeHostname=vm Port=$P_SLURMD_CPU CPUs=8 Boards=1 SocketsPerBoard=2 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=128000 State=UNKNOWN
PartitionName=cpu Nodes=cpu01 Default=YES MaxTime=7-00:00:00 State=UP
PartitionName=gpu Nodes=gpu01 MaxTime=2-00:00:00 State=UP
PartitionName=largemem Nodes=cpu01 MaxTime=7-00:00:00 State=UP
EOF
  cat > "$E/slurm/gres.conf" <<EOF
AutoDetect=off
NodeName=gpu01 Name=gpu Type=a100 File=$S/dev/nvidia[0-1]
NodeName=gpu01 Name=gpu Type=v100 File=$S/dev/nvidia[2-3]
EOF
  if slurm_cgroup_v1; then
    cat > "$E/slurm/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainRAMSpace=yes
ConstrainSwapSpace=no
ConstrainCores=no
ConstrainDevices=no
EOF
  else
    rm -f "$E/slurm/cgroup.conf"
  fi
  (umask 077; cat > "$E/slurm/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$E/slurm/jwt_hs256.key
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$P_SLURMDBD
CommunicationParameters=NoInAddrAny
SlurmUser=slurm
DebugLevel=info
LogFile=$L/slurmdbd.log
PidFile=$R/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$port
StorageUser=slurm
StoragePass=$(secret mariadb_slurm)
StorageLoc=slurm_acct_db
EOF
)
  chown slurm:slurm "$E/slurm/slurmdbd.conf"; chmod 600 "$E/slurm/slurmdbd.conf"  # slurmdbd refuses otherwise
  ensure_jwt_key
  mkdir -p "$S/dev"
  local i
  for i in 0 1 2 3; do [ -e "$S/dev/nvidia$i" ] || mknod -m 666 "$S/dev/nvidia$i" c 1 3; done  # /dev/null clones
}

# ------------------------------------------------------------------ daemons
# as_localhost DAEMON [ARGS...]: start a Slurm daemon in a UTS namespace of its own whose hostname is
# localhost. With CommunicationParameters=NoInAddrAny (NoCtldInAddrAny for slurmctld) Slurm daemons
# listen on the address gethostname() resolves to, not on DbdAddr/SlurmctldHost/NodeAddr: 127.0.0.1
# only where the machine's hostname resolves to it (Debian's installer maps it to 127.0.1.1, other
# machines to their LAN address). Job steps inherit it: `hostname` prints localhost in jobs.
as_localhost() {
  # shellcheck disable=SC2016
  unshare --uts -- sh -c 'hostname localhost && exec "$@"' sh "$@"
}

start_slurm() {
  local t0; t0=$(now)
  write_slurm_conf
  install -d -o slurm -g slurm -m 755 "$D/slurmctld"
  install -d -m 755 "$D/slurmd" "$D/slurmd/gpu01" "$D/slurmd/cpu01"
  install -d -m 1777 "$D/jobs"
  if ! svc_up slurmdbd; then
    cleanup_stale slurmdbd
    check_port_free "$P_SLURMDBD" slurmdbd
    rm -f "$R/slurmdbd.pid"
    as_localhost slurmdbd || { tail_log "$L/slurmdbd.log"; die "slurmdbd did not start"; }
    wait_for 10 "$L/slurmdbd.log" "slurmdbd pid file" test -s "$R/slurmdbd.pid" || die "slurmdbd did not start"
    record slurmdbd
  fi
  wait_for 30 "$L/slurmdbd.log" "slurmdbd (sacctmgr show cluster)" sacctmgr -n show cluster || die "slurmdbd does not answer"
  took slurmdbd "$t0"
  seed_accounting
  t0=$(now)
  if ! svc_up slurmctld; then
    cleanup_stale slurmctld
    check_port_free "$P_SLURMCTLD" slurmctld
    rm -f "$R/slurmctld.pid"
    as_localhost slurmctld || { tail_log "$L/slurmctld.log"; die "slurmctld did not start"; }
    wait_for 10 "$L/slurmctld.log" "slurmctld pid file" test -s "$R/slurmctld.pid" || die "slurmctld did not start"
    record slurmctld
  fi
  local n port
  for n in gpu01 cpu01; do
    if ! svc_up "slurmd-$n"; then
      cleanup_stale "slurmd-$n"
      if [ "$n" = gpu01 ]; then port=$P_SLURMD_GPU; else port=$P_SLURMD_CPU; fi
      check_port_free "$port" "slurmd $n"
      rm -f "$R/slurmd-$n.pid"
      as_localhost slurmd -N "$n" || { tail_log "$L/slurmd-$n.log"; die "slurmd $n did not start"; }
      wait_for 10 "$L/slurmd-$n.log" "slurmd $n pid file" test -s "$R/slurmd-$n.pid" || die "slurmd $n did not start"
      record "slurmd-$n"
    fi
  done
  wait_for 40 "$L/slurmctld.log $L/slurmd-gpu01.log $L/slurmd-cpu01.log" "both nodes idle" \
    sh -c '[ "$(sinfo -h -N -o "%N %T" | sort -u | grep -c -E " (idle|mixed|allocated)$")" -ge 2 ]' \
    || die "the nodes did not come up"
  took slurmctld+d "$t0"
}

# Accounts, users, QOS: only on a new state dir, before slurmctld first registers the cluster.
# One `sacctmgr load` of a flat file is a single RPC (each sacctmgr command costs ~0.5 s here:
# slurmdbd answers every message in two writes and loopback's delayed ACK adds ~40 ms to each).
seed_accounting() {
  [ -e "$D/.slurm-seeded" ] && return 0
  local t0; t0=$(now)
  sacctmgr -i > "$L/sacctmgr-seed.log" 2>&1 <<'EOF' || true
add qos capped GrpTRES=cpu=2 Priority=0 Description="capped: GrpTRES=cpu=2"
add qos high Priority=100 Description="high priority"
EOF
  cat > "$E/slurm/accounts.cfg" <<EOF
Cluster - '$CLUSTER':Fairshare=1:QOS='normal'
Parent - 'root'
Account - 'physics':Description='Physics department':Organization='science':Fairshare=40
Account - 'chem':Description='Chemistry department':Organization='science':Fairshare=40
Account - 'staff':Description='HPC staff':Organization='hpc':Fairshare=20
Parent - 'physics'
User - 'alice':DefaultAccount='physics':Fairshare=1:QOS='high,normal'
User - 'bob':DefaultAccount='chem':Fairshare=1:QOS='capped,normal'
User - 'staffer':DefaultAccount='staff':Coordinator='physics':Fairshare=1
Parent - 'chem'
User - 'bob':DefaultAccount='chem':Fairshare=1
User - 'carol':DefaultAccount='chem':Fairshare=1
Parent - 'staff'
User - 'staffer':DefaultAccount='staff':Coordinator='physics':Fairshare=1
User - 'jobqueue':DefaultAccount='staff':Fairshare=1
EOF
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i load file="$E/slurm/accounts.cfg" >> "$L/sacctmgr-seed.log" 2>&1 || true
  else
    # the cluster exists already (slurmctld registered it): the old way, one command at a time
    sacctmgr -i >> "$L/sacctmgr-seed.log" 2>&1 <<'EOF' || true
add account physics Description="Physics department" Organization=science Fairshare=40
add account chem Description="Chemistry department" Organization=science Fairshare=40
add account staff Description="HPC staff" Organization=hpc Fairshare=20
add user alice Account=physics DefaultAccount=physics
add user bob Account=chem,physics DefaultAccount=chem
add user carol Account=chem DefaultAccount=chem
add user staffer Account=staff,physics DefaultAccount=staff
add user jobqueue Account=staff DefaultAccount=staff
modify user bob where account=physics set qos=capped,normal
modify user alice where account=physics set qos=high,normal
add coordinator account=physics names=staffer
EOF
  fi
  if [ "$(sacctmgr -n -P show assoc format=user where user=bob account=physics | head -1)" != bob ]; then
    tail_log "$L/sacctmgr-seed.log"; die "seeding Slurm accounts failed"
  fi
  touch "$D/.slurm-seeded"
  took sacctmgr "$t0"
}

start_slurmrestd() {
  local t0; t0=$(now)
  if ! svc_up slurmrestd; then
    cleanup_stale slurmrestd
    check_port_free "$P_SLURMRESTD" slurmrestd
    # must not run as root or SlurmUser; SLURM_JWT=daemon makes it pass user tokens through
    rm -f "$R/slurmrestd.pid"
    SLURM_JWT=daemon start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$R/slurmrestd.pid" \
      --chuid slurmrestd --output "$L/slurmrestd.log" --exec /usr/sbin/slurmrestd -- \
      -a rest_auth/jwt -s openapi/v0.0.38,openapi/dbv0.0.38,openapi/v0.0.37,openapi/dbv0.0.37 "127.0.0.1:$P_SLURMRESTD"
    record slurmrestd
  fi
  local tok
  tok=$(scontrol token username=slurmrestd lifespan=300 | cut -d= -f2)
  wait_svc 20 slurmrestd "$L/slurmrestd.log" "slurmrestd ping" \
    curl -sf -H "X-SLURM-USER-NAME: slurmrestd" -H "X-SLURM-USER-TOKEN: $tok" "http://127.0.0.1:$P_SLURMRESTD/slurm/v0.0.38/ping" \
    || die "slurmrestd does not answer"
  took slurmrestd "$t0"
}

# Running jobs would outlive slurmd (their slurmstepd is not a child we track): cancel them
# first, so no job process is left behind. Pending jobs stay pending.
cancel_running_jobs() {
  svc_up slurmctld || return 0
  local ids i
  ids=$(squeue -h -t RUNNING,SUSPENDED,CONFIGURING -o %A 2>/dev/null | paste -sd' ' - || true)
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  scancel $ids 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    [ -z "$(squeue -h -t RUNNING,SUSPENDED,CONFIGURING,COMPLETING -o %A 2>/dev/null)" ] && break
    sleep 0.1
  done
  log "  cancelled running job(s) $ids so that no job process outlives the stack"
}

stop_slurm() {
  cancel_running_jobs
  stop_svc slurmrestd 5
  stop_svc slurmd-cpu01 10
  stop_svc slurmd-gpu01 10
  stop_svc slurmctld 30
  stop_svc slurmdbd 15
  stop_svc munged 5
}
