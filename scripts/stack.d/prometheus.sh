# shellcheck shell=bash
# Prometheus 2.42 on 127.0.0.1:9090 with exporter-style series backfilled by promtool, and
# scraping the exporters the stack runs (node_exporter.sh, job_exporter.sh for running jobs, libvirt.sh).
#
# First up: 6 h of synthetic history is written into the empty TSDB before Prometheus starts.
# The recording rules are switched on only after the first backfill of real jobs (or right away
# with --no-jobs): their history is computed by `promtool tsdb create-blocks-from rules`, and
# live evaluation starts after that, so recorded series never mix values computed before and
# after a backfill. Loading new blocks = restarting Prometheus (about 1 s; a running Prometheus
# would pick moved-in blocks up only at its next reload, up to a minute later).

PROM_TSDB=$D/prometheus
PROM_STATE=$D/prometheus-backfill.json

write_prometheus_conf() {
  local rules=$1
  mkdir -p "$E/prometheus"
  cp "$STACK_D/rules.yml" "$E/prometheus/rules.yml"
  {
    cat <<EOF
# Written by scripts/stack.
global:
  scrape_interval: 30s
  evaluation_interval: 30s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$P_PROMETHEUS']
EOF
    # the libvirt exporter (libvirt.sh): every 15 s, so the graphs of a freshly booted guest and a
    # stopped exporter (up == 0) show within ~30 s
    if [ "$(libvirt_mode)" != no ]; then
      cat <<EOF
  - job_name: libvirt
    scrape_interval: 15s
    static_configs:
      - targets: ['127.0.0.1:$P_LIBVIRT_EXPORTER']
EOF
    fi
    # the portal's own metrics (/metrics through Apache), with the bearer token of daemon.env
    secret portal_metrics_token > /dev/null
    cat <<EOF
  - job_name: portal
    scrape_interval: 15s
    metrics_path: /metrics
    authorization:
      credentials_file: $SEC/portal_metrics_token
    static_configs:
      - targets: ['127.0.0.1:$P_APACHE']
EOF
    per_node_scrape_job node "$P_NODE_EXPORTER" 9100 0          # node_exporter.sh
    per_node_scrape_job slurm-job-exporter "$P_JOB_EXPORTER" 9798 1  # job_exporter.sh
    if [ "$rules" = 1 ]; then
      printf 'rule_files:\n  - %s\n' "$E/prometheus/rules.yml"
    fi
  } > "$E/prometheus/prometheus.yml"
}

# per_node_scrape_job <job name> <port> <instance port> <node param: 0|1>: a scrape job for an exporter
# on 127.0.0.1:<port> that stands for every stack node (they are all this machine): one target per
# node, relabelled instance="<node>:<instance port>" (and ?node=<node> when asked)
per_node_scrape_job() {
  local name=$1 port=$2 instance_port=$3 param=$4 node
  printf '  - job_name: %s\n    static_configs:\n' "$name"
  for node in $STACK_NODES; do
    printf "      - targets: ['127.0.0.1:%s']\n        labels: {stack_node: %s}\n" "$port" "$node"
  done
  printf '    relabel_configs:\n'
  if [ "$param" = 1 ]; then
    printf '      - source_labels: [stack_node]\n        target_label: __param_node\n'
  fi
  printf "      - source_labels: [stack_node]\n        target_label: instance\n        replacement: '\${1}:%s'\n" "$instance_port"
  printf '      - regex: stack_node\n        action: labeldrop\n'
}

prom_rules_enabled() { [ -e "$D/.prometheus-rules" ]; }

# prom_reload_conf: a Prometheus that is already running gets the configuration this script writes
# now, e.g. a scrape job added since it started (the libvirt exporter's): --web.enable-lifecycle
prom_reload_conf() {
  local before; before=$(cat "$E/prometheus/prometheus.yml" 2>/dev/null || true)
  if prom_rules_enabled; then write_prometheus_conf 1; else write_prometheus_conf 0; fi
  [ "$before" != "$(cat "$E/prometheus/prometheus.yml")" ] || return 0
  if curl -sf -X POST "http://127.0.0.1:$P_PROMETHEUS/-/reload" > /dev/null; then
    log "  prometheus     configuration reloaded (it changed since Prometheus started)"
  else
    warn "prometheus: reloading its new configuration failed ($L/prometheus.log)"
  fi
}

prom_daemon_start() {
  if svc_up prometheus; then return 0; fi
  cleanup_stale prometheus
  check_port_free "$P_PROMETHEUS" prometheus
  bg_start prometheus "$L/prometheus.log" prometheus --config.file="$E/prometheus/prometheus.yml" \
    --storage.tsdb.path="$PROM_TSDB" --storage.tsdb.retention.time=3650d \
    --web.listen-address="127.0.0.1:$P_PROMETHEUS" --web.enable-admin-api --web.enable-lifecycle
  wait_svc 60 prometheus "$L/prometheus.log" "prometheus ready" curl -sf "http://127.0.0.1:$P_PROMETHEUS/-/ready" \
    || die "prometheus did not start"
}

prom_restart() { stop_svc prometheus 30 >/dev/null; prom_daemon_start; }

# prom_load_blocks <dir>: move the blocks promtool wrote into the TSDB (Prometheus must be stopped)
prom_load_blocks() {
  local dir=$1 b n=0
  for b in "$dir"/*; do
    [ -d "$b" ] || continue
    [[ ${b##*/} =~ ^[0-9A-HJKMNP-TV-Z]{26}$ ]] || continue
    mv "$b" "$PROM_TSDB/"; n=$((n + 1))
  done
  rm -rf "$dir"
  echo "$n"
}

# prom_gen <out.om> <gen_metrics args...>: prints the JSON summary
prom_gen() {
  local out=$1; shift
  "$SYS_PY" "$STACK_D/gen_metrics.py" "$out" --state "$PROM_STATE" "$@" 2> "$L/gen_metrics.log" \
    || { tail_log "$L/gen_metrics.log"; die "generating the OpenMetrics file failed"; }
}

# prom_blocks <file.om> <outdir>
prom_blocks() {
  mkdir -p "$2"
  promtool tsdb create-blocks-from openmetrics "$1" "$2" > "$L/promtool.log" 2>&1 \
    || { tail_log "$L/promtool.log"; die "promtool create-blocks-from openmetrics failed"; }
}

# prom_backfill_rules <start_epoch> <end_epoch>: recording-rule history, then rules on (restart)
prom_backfill_rules() {
  local start=$1 end=$2 out=$D/prometheus-staging/rules n
  rm -rf "$out"
  if [ "$end" -gt "$start" ]; then
    promtool tsdb create-blocks-from rules --start="$start" --end="$end" --eval-interval=30s \
      --url="http://127.0.0.1:$P_PROMETHEUS" --output-dir="$out" "$E/prometheus/rules.yml" \
      > "$L/promtool-rules.log" 2>&1 || { tail_log "$L/promtool-rules.log"; die "promtool create-blocks-from rules failed"; }
  fi
  write_prometheus_conf 1
  touch "$D/.prometheus-rules"
  stop_svc prometheus 30 >/dev/null
  n=$(prom_load_blocks "$out")
  prom_daemon_start
  log "  prometheus     recording rules on; $n block(s) of rule history"
}

start_prometheus() {
  local t0 summary start now; t0=$(now)
  if svc_up prometheus; then prom_reload_conf; took prometheus "$t0"; return 0; fi
  if [ ! -e "$D/.prometheus-initialized" ]; then
    rm -rf "$PROM_TSDB" "$PROM_STATE" "$D/prometheus-staging" "$D/.prometheus-rules"
    mkdir -p "$PROM_TSDB" "$D/prometheus-staging"
    now=$(date +%s)
    summary=$(prom_gen "$D/prometheus-staging/synthetic.om" --synthetic-hours 6 --now "$now")
    prom_blocks "$D/prometheus-staging/synthetic.om" "$PROM_TSDB"
    rm -f "$D/prometheus-staging/synthetic.om"
    write_prometheus_conf 0
    prom_daemon_start
    touch "$D/.prometheus-initialized"
    log "  prometheus     backfilled 6 h of synthetic series ($(printf '%s' "$summary" | jq -r .samples) samples)"
    echo "$((now - 6 * 3600))" > "$D/prometheus-history-start"
  else
    if prom_rules_enabled; then write_prometheus_conf 1; else write_prometheus_conf 0; fi
    prom_daemon_start
  fi
  took prometheus "$t0"
}

# Rules on without a job backfill (up --no-jobs): history of the synthetic data only.
prometheus_finish_rules() {
  prom_rules_enabled && return 0
  local start; start=$(cat "$D/prometheus-history-start" 2>/dev/null || echo $(( $(date +%s) - 6 * 3600 )))
  prom_backfill_rules "$start" "$(date +%s)"
}

# backfill_jobs: series for every finished job in sacct that has none yet, loaded into Prometheus.
backfill_jobs() {
  local t0 summary first njobs now rstart n; t0=$(now)
  svc_up prometheus || die "prometheus is not running (scripts/stack up first)"
  mkdir -p "$D/prometheus-staging"
  now=$(date +%s)
  summary=$(prom_gen "$D/prometheus-staging/jobs.om" --sacct --now "$now" --prometheus "http://127.0.0.1:$P_PROMETHEUS")
  njobs=$(printf '%s' "$summary" | jq '.jobs | length')
  first=$(printf '%s' "$summary" | jq -r '.first_t // empty')
  if [ "$njobs" = 0 ]; then
    rm -f "$D/prometheus-staging/jobs.om"
    log "  backfill       no finished job without series yet"
    prometheus_finish_rules
    return 0
  fi
  prom_blocks "$D/prometheus-staging/jobs.om" "$D/prometheus-staging/jobs"
  rm -f "$D/prometheus-staging/jobs.om"
  stop_svc prometheus 30 >/dev/null
  n=$(prom_load_blocks "$D/prometheus-staging/jobs")
  prom_daemon_start
  log "  backfill       $njobs job(s) from sacct ($(printf '%s' "$summary" | jq -r '.jobs | join(",")')), $(printf '%s' "$summary" | jq .samples) samples, $n block(s)"
  # recording-rule history for the new data (the whole history the first time)
  if prom_rules_enabled; then
    rstart=${first:-$now}
    rstart=$(( rstart - 120 ))
  else
    rstart=$(cat "$D/prometheus-history-start" 2>/dev/null || echo $(( now - 6 * 3600 )))
  fi
  prom_backfill_rules "$rstart" "$now"
  took backfill "$t0"
}

stop_prometheus() { stop_svc prometheus 30; }
