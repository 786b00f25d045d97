# shellcheck shell=bash
# The live stand-in for slurm-job-exporter (job_exporter.py) on 127.0.0.1:$P_JOB_EXPORTER: series of the
# jobs while they run, read from their cgroups (the cgroup v1 memory controller Slurm's task/cgroup
# uses here). Prometheus scrapes it every 30 s, once per stack node, as instance "<node>:9798".
# Jobs it was scraped for are left out of the backfill (gen_metrics.py), so no job has two sources.
# Without a cgroup v1 memory controller it runs and exports nothing (finished jobs are backfilled).

job_exporter_ready() { curl -sf "http://127.0.0.1:$P_JOB_EXPORTER/metrics?node=cpu01" > /dev/null; }

start_job_exporter() {
  local t0; t0=$(now)
  if svc_up job-exporter; then took job-exporter "$t0"; return 0; fi
  cleanup_stale job-exporter
  check_port_free "$P_JOB_EXPORTER" job-exporter
  bg_start job-exporter "$L/job-exporter.log" "$SYS_PY" "$STACK_D/job_exporter.py" \
    --listen "127.0.0.1:$P_JOB_EXPORTER" --cgroup /sys/fs/cgroup/memory
  wait_svc 20 job-exporter "$L/job-exporter.log" "job exporter metrics" job_exporter_ready \
    || die "the job exporter did not start ($L/job-exporter.log)"
  took job-exporter "$t0"
}

stop_job_exporter() { stop_svc job-exporter 10; }

job_exporter_status() { svc_status job-exporter "$P_JOB_EXPORTER"; }
