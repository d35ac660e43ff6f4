#!/usr/bin/env bash
# Stop the cluster started by start_local_cluster.sh: kill exactly the recorded pids (workers first, so
# they do not spin trying to reconnect), wait for each to exit, and remove the pid files. Safe to repeat.
set -euo pipefail
source "$(dirname "$0")/cluster_env.sh"
GRACE="${CUSTSEG_CLUSTER_STOP_GRACE:-30}"   # seconds after SIGTERM before SIGKILL

stop_one() {
  local pid_file="$1" name pid
  name="$(basename "$pid_file" .pid)"
  pid="$(cat "$pid_file")"
  if is_spark_daemon "$pid"; then
    kill "$pid"   # SIGTERM: the worker's shutdown hook also stops its executors
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$waited" -ge "$GRACE" ]; then
        echo "$name (pid $pid) still up after ${GRACE}s, sending SIGKILL" >&2
        kill -9 "$pid" 2>/dev/null || true
        break
      fi
      sleep 1
      waited=$((waited + 1))
    done
    echo "stopped $name (pid $pid)"
  else
    echo "$name (pid $pid) was not running"
  fi
  rm -f "$pid_file"
}

shopt -s nullglob
pid_files=("$CLUSTER_DIR"/pids/worker*.pid)
[ -f "$CLUSTER_DIR/pids/master.pid" ] && pid_files+=("$CLUSTER_DIR/pids/master.pid")
if [ "${#pid_files[@]}" -eq 0 ]; then
  echo "no cluster pid files under $CLUSTER_DIR/pids: nothing to stop"
  exit 0
fi
for pid_file in "${pid_files[@]}"; do
  stop_one "$pid_file"
done
# Applications' copies of jars and the library zip: reclaimed here unless kept for a post-mortem.
if [ "${CUSTSEG_KEEP_WORK:-0}" != "1" ] && [ -d "$CLUSTER_DIR/work" ]; then
  rm -rf "$CLUSTER_DIR"/work/worker*/app-*
  echo "removed finished applications' files under $CLUSTER_DIR/work"
fi
