# shellcheck shell=bash
# The first batch of real jobs: submitted with sbatch as the stack's users, so slurmdbd, sacct,
# slurmrestd and the portal all see genuine records. $D/jobs/batch.txt lists name|jobid|wait
# (wait=1: up waits until slurmdbd has its final state).

BATCH=$D/jobs/batch.txt

# submit <name> <wait> <user> <sbatch args...> ; the script comes from stdin
submit() {
  local name=$1 waitflag=$2 user=$3 id; shift 3
  id=$(cd "$D/jobs" && runuser -u "$user" -- env SLURM_CONF="$SLURM_CONF" \
        sbatch --parsable -J "$name" -o "$D/jobs/%x-%j.out" "$@" 2>> "$L/jobs-submit.log") \
    || { tail_log "$L/jobs-submit.log"; die "sbatch for job $name (as $user) failed"; }
  id=${id%%;*}
  printf '%s|%s|%s\n' "$name" "$id" "$waitflag" >> "$BATCH"
  printf '  %-16s %-8s job %s\n' "$name" "$user" "$id"
}

submit_first_batch() {
  local t0; t0=$(now)
  install -d -m 1777 "$D/jobs"
  : > "$BATCH"
  log "submitting the first batch of jobs"
  submit cpu-busy 1 alice -A physics -p cpu -c 2 --mem=500M -t 10 <<'EOF'
#!/bin/bash
# Two cores busy for 3 seconds.
echo "on $(hostname) as $(id -un), cpus $SLURM_CPUS_ON_NODE"
for i in 1 2; do timeout 3 sh -c 'while :; do :; done' & done
wait
echo done
EOF
  submit exit-3 1 bob -A chem -p cpu -c 1 --mem=200M -t 5 <<'EOF'
#!/bin/bash
echo "this job fails with exit code 3" >&2
sleep 1
exit 3
EOF
  submit out-of-memory 1 carol -A chem -p cpu -c 1 --mem=100M -t 5 <<'EOF'
#!/bin/bash
# Allocates 400 MB with a 100 MB limit.
python3 -c '
import time
a = bytearray(400 * 1024 * 1024)
for i in range(0, len(a), 4096):
    a[i] = 1
time.sleep(5)
'
EOF
  submit time-limit 0 bob -A physics --qos=normal -p cpu -c 1 --mem=100M -t 1 <<'EOF'
#!/bin/bash
# -t 1 and a longer sleep: ends as TIMEOUT about a minute after it starts.
sleep 600
EOF
  submit cancelled 1 alice -A physics -p cpu -c 1 --mem=100M -t 10 <<'EOF'
#!/bin/bash
# cancelled by scripts/stack once it runs
sleep 600
EOF
  submit qos-pending 0 bob -A physics --qos=capped -p cpu -c 4 --mem=400M -t 10 <<'EOF'
#!/bin/bash
# QOS "capped" has GrpTRES=cpu=2: this 4-core job stays pending (QOSGrpCpuLimit).
sleep 10
EOF
  submit array 1 alice -A physics -p cpu -c 1 --mem=100M -t 5 --array=1-3 <<'EOF'
#!/bin/bash
echo "array task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID"
sleep $((SLURM_ARRAY_TASK_ID))
EOF
  submit srun-steps 1 bob -A chem -p cpu -n 2 --mem-per-cpu=100M -t 5 <<'EOF'
#!/bin/bash
srun -n 2 hostname
srun -n 1 sleep 1
srun -n 1 -J busy timeout 2 sh -c 'while :; do :; done' || true
EOF
  submit gpu-a100 1 alice -A physics -p gpu -c 2 --mem=1G --gres=gpu:a100:1 -t 10 <<'EOF'
#!/bin/bash
echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES SLURM_JOB_GPUS=$SLURM_JOB_GPUS"
timeout 3 sh -c 'while :; do :; done' || true
EOF
  submit gpu-v100 1 bob -A chem -p gpu -c 2 --mem=1G --gres=gpu:v100:2 -t 10 <<'EOF'
#!/bin/bash
echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES SLURM_JOB_GPUS=$SLURM_JOB_GPUS"
sleep 2
EOF
  submit largemem 1 carol -A chem -p largemem -c 1 --mem=20G -t 5 <<'EOF'
#!/bin/bash
sleep 2
EOF
  submit staff-job 1 staffer -A staff -p cpu -c 1 --mem=100M -t 5 <<'EOF'
#!/bin/bash
echo "staff test job"
EOF
  touch "$D/.first-batch"
  took "submit" "$t0"
}

# final states as sacct prints them (first word)
is_final() {
  case $1 in
    COMPLETED|FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE) return 0 ;;
    *) return 1 ;;
  esac
}

wait_first_batch() {
  [ -s "$BATCH" ] || return 0
  local t0 ids cancel_id states line id state pending end
  t0=$(now)
  ids=$(awk -F'|' '$3==1 {print $2}' "$BATCH" | paste -sd, -)
  cancel_id=$(awk -F'|' '$1=="cancelled" {print $2}' "$BATCH")
  end=$(( $(date +%s) + 90 ))
  while :; do
    # cancel the "cancelled" job once it has run for a moment
    if [ -n "$cancel_id" ] && [ "$(squeue -h -j "$cancel_id" -o %T 2>/dev/null)" = RUNNING ]; then
      sleep 1; scancel "$cancel_id" || true; cancel_id=""
    fi
    # every array task and every job: accounting must show a final state (steps excluded).
    # The same query as the backfill's (-S/-E, all users): for array tasks it can lag `sacct -j`.
    states=$(TZ=UTC sacct -a -n -P -X -S 2000-01-01 -E now --format=JobID,State 2>/dev/null \
      | awk -F'|' -v ids=",$ids," '{ split($1, a, "_"); if (index(ids, "," a[1] ",")) print }' || true)
    pending=0
    if [ -z "$states" ]; then
      pending=1
    else
      while IFS='|' read -r id state; do
        [ -n "$id" ] || continue
        is_final "${state%% *}" || { pending=1; break; }
      done <<< "$states"
      # an array job shows as "<id>_[1-3]" until its tasks start
      case $states in *'['*) pending=1 ;; esac
      # and every submitted job must be listed at all
      for id in ${ids//,/ }; do
        grep -q -E "^${id}(_[0-9]+)?\|" <<< "$states" || { pending=1; break; }
      done
    fi
    [ "$pending" = 0 ] && break
    if [ "$(date +%s)" -ge "$end" ]; then
      log "$states"
      tail_log "$L/slurmctld.log" "$L/slurmdbd.log"
      die "the first batch of jobs did not finish within 90 s"
    fi
    sleep 0.5
  done
  took "jobs finished" "$t0"
  TZ=UTC sacct -n -P -X -j "$ids,$(awk -F'|' '$3==0 {print $2}' "$BATCH" | paste -sd, -)" \
    --format=JobID,User,Account,Partition,State,ExitCode,Elapsed | while IFS= read -r line; do printf '    %s\n' "$line"; done
}
