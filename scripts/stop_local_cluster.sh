#!/usr/bin/env bash
# Stop the cluster started by start_local_cluster.sh: kill exactly the recorded pids (the workers together first, so
# they do not spin trying to reconnect, then the master), wait for each to exit, and remove the pid files. Safe to
# repeat.
set -euo pipefail
source "$(dirname "$0")/cluster_env.sh"
GRACE="${CUSTSEG_CLUSTER_STOP_GRACE:-30}"   # seconds after SIGTERM before SIGKILL

# SIGTERM every daemon of the given pid files at once (a worker's shutdown hook also stops its executors), then
# wait for each to exit, SIGKILL after GRACE seconds, and remove its pid file.
stop_together() {
  local pid_file name pid waited
  local -a running=()
  for pid_file in "$@"; do
    pid="$(cat "$pid_file")"
    if is_spark_daemon "$pid"; then
      kill "$pid"
      running+=("$pid_file")
    else
      echo "$(basename "$pid_file" .pid) (pid $pid) was not running"
      rm -f "$pid_file"
    fi
  done
  for pid_file in "${running[@]}"; do
    name="$(basename "$pid_file" .pid)"
    pid="$(cat "$pid_file")"
    waited=0   # tenths of a second
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$waited" -ge $((GRACE * 10)) ]; then
        echo "$name (pid $pid) still up after ${GRACE}s, sending SIGKILL" >&2
        kill -9 "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
    echo "stopped $name (pid $pid)"
    rm -f "$pid_file"
  done
}

shopt -s nullglob
worker_pids=("$CLUSTER_DIR"/pids/worker*.pid)
master_pids=()
[ -f "$CLUSTER_DIR/pids/master.pid" ] && master_pids+=("$CLUSTER_DIR/pids/master.pid")
if [ "$((${#worker_pids[@]} + ${#master_pids[@]}))" -eq 0 ]; then
  echo "no cluster pid files under $CLUSTER_DIR/pids: nothing to stop"
  exit 0
fi
stop_together "${worker_pids[@]}"
stop_together "${master_pids[@]}"
# Applications' copies of jars and the library zip: reclaimed here unless kept for a post-mortem.
if [ "${CUSTSEG_KEEP_WORK:-0}" != "1" ] && [ -d "$CLUSTER_DIR/work" ]; then
  rm -rf "$CLUSTER_DIR"/work/worker*/app-*
  echo "removed finished applications' files under $CLUSTER_DIR/work"
fi
