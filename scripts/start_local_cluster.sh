#!/usr/bin/env bash
# Start a Spark standalone cluster on this machine: one master and $CUSTSEG_WORKERS (2) workers, each a
# separate JVM with 1 core and 2g, so spark-submit exercises the real driver/executor split (serialisation,
# --py-files shipping, partition-dependent results) that local[N] hides.
# Logs, pid files and executor work dirs go under .cluster/ (gitignored). Prints the master URL last.
# Stop with scripts/stop_local_cluster.sh (same environment variables).
set -euo pipefail
source "$(dirname "$0")/cluster_env.sh"
TIMEOUT="${CUSTSEG_CLUSTER_TIMEOUT:-120}"   # seconds to wait for all workers to register

# The master's REST submission server (port 6066) is only for --deploy-mode cluster via REST: off, one port less.
export SPARK_MASTER_OPTS="${SPARK_MASTER_OPTS:-} -Dspark.master.rest.enabled=false"

mkdir -p "$CLUSTER_DIR/logs" "$CLUSTER_DIR/pids" "$CLUSTER_DIR/work"
command -v curl >/dev/null || { echo "curl is needed to ask the master for its workers" >&2; exit 1; }

is_running() {  # the pid file names a live Spark master or worker
  [ -f "$1" ] && is_spark_daemon "$(cat "$1")"
}

COUNT_ALIVE='import json, sys; print(sum(w["state"] == "ALIVE" for w in json.load(sys.stdin)["workers"]))'
alive_workers() {  # ALIVE workers the master knows about; 0 while its web UI is not up yet
  curl -fsS --max-time 2 "$MASTER_JSON" 2>/dev/null | "$VENV/bin/python" -c "$COUNT_ALIVE" 2>/dev/null || echo 0
}

launch() {  # name, main class, arguments...: run one daemon in the background and record its pid
  local name="$1"; shift
  if is_running "$CLUSTER_DIR/pids/$name.pid"; then
    echo "$name already running (pid $(cat "$CLUSTER_DIR/pids/$name.pid"))"
    return
  fi
  # spark-class execs java, so $! is the JVM's pid: stop_local_cluster.sh kills exactly that process.
  nohup "$SPARK_HOME/bin/spark-class" "$@" >"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$CLUSTER_DIR/pids/$name.pid"
  echo "started $name (pid $!), log $CLUSTER_DIR/logs/$name.log"
}

# Forget pid files of daemons that are gone (a crash, a reboot), so they are not mistaken for failures below.
for pid_file in "$CLUSTER_DIR"/pids/*.pid; do
  if [ -e "$pid_file" ] && ! is_running "$pid_file"; then rm -f "$pid_file"; fi
done

# Every application copies its jars and the library zip into each worker's work dir: workers delete the
# folders of finished applications older than an hour, checking every 10 minutes. stop_local_cluster.sh
# removes what is left (CUSTSEG_KEEP_WORK=1 keeps it for a post-mortem).
export SPARK_WORKER_OPTS="${SPARK_WORKER_OPTS:-} -Dspark.worker.cleanup.enabled=true \
  -Dspark.worker.cleanup.interval=600 -Dspark.worker.cleanup.appDataTtl=3600"

launch master org.apache.spark.deploy.master.Master \
  --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT"
for i in $(seq 1 "$WORKERS"); do
  mkdir -p "$CLUSTER_DIR/work/worker$i"
  worker_ui_port=0   # 0 = any free port
  [ "$WORKER_UI_PORT" -eq 0 ] || worker_ui_port=$((WORKER_UI_PORT + i - 1))
  launch "worker$i" org.apache.spark.deploy.worker.Worker \
    --host 127.0.0.1 --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
    --webui-port "$worker_ui_port" --work-dir "$CLUSTER_DIR/work/worker$i" "$MASTER_URL"
done

# Workers retry their registration, so a worker started before the master was listening still joins.
deadline=$((SECONDS + TIMEOUT))
until [ "$(alive_workers)" -ge "$WORKERS" ]; do
  for pid_file in "$CLUSTER_DIR"/pids/*.pid; do
    if ! is_running "$pid_file"; then
      name="$(basename "$pid_file" .pid)"
      echo "$name exited during start-up; last lines of its log:" >&2
      tail -n 20 "$CLUSTER_DIR/logs/$name.log" >&2
      bash "$(dirname "$0")/stop_local_cluster.sh" >&2
      exit 1
    fi
  done
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "timed out after ${TIMEOUT}s: $(alive_workers) of $WORKERS workers ALIVE at $MASTER_JSON" >&2
    bash "$(dirname "$0")/stop_local_cluster.sh" >&2
    exit 1
  fi
  sleep 1
done
echo "$WORKERS workers ALIVE; master UI http://127.0.0.1:$MASTER_UI_PORT"
echo "$MASTER_URL"
