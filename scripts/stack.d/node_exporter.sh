# shellcheck shell=bash
# Debian's prometheus-node-exporter on 127.0.0.1:$P_NODE_EXPORTER: the real source of the node graphs
# (network, disks, local disk, node CPUs), instead of series the stack would make up.
#
# The stack's two Slurm nodes (cpu01, gpu01) are this machine, so Prometheus scrapes the one exporter
# once per node, each time with the instance label the portal's node graphs select
# (JOBSTATS_NODE_INSTANCE, default "{node}:9100"): instance="cpu01:9100" and instance="gpu01:9100".
# Like every exporter it sends no `cluster` label (PROMETHEUS_EXTRA_LABELS is optional).

node_exporter_ready() { curl -sf "http://127.0.0.1:$P_NODE_EXPORTER/metrics" | grep -q '^node_cpu_seconds_total{'; }

start_node_exporter() {
  local t0; t0=$(now)
  have prometheus-node-exporter || die "prometheus-node-exporter is missing (scripts/stack install)"
  if svc_up node-exporter; then took node-exporter "$t0"; return 0; fi
  cleanup_stale node-exporter
  check_port_free "$P_NODE_EXPORTER" node-exporter
  bg_start node-exporter "$L/node-exporter.log" prometheus-node-exporter \
    --web.listen-address="127.0.0.1:$P_NODE_EXPORTER"
  wait_svc 30 node-exporter "$L/node-exporter.log" "node_exporter metrics" node_exporter_ready \
    || die "node_exporter did not start ($L/node-exporter.log)"
  took node-exporter "$t0"
}

stop_node_exporter() { stop_svc node-exporter 10; }

# node_exporter_status: its line; returns 1 when it is down
node_exporter_status() { svc_status node-exporter "$P_NODE_EXPORTER"; }
