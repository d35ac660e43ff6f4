# Shared settings for start_local_cluster.sh / stop_local_cluster.sh (sourced, not run).
# Every value can be overridden from the environment, e.g. SPARK_MASTER_PORT=7277 scripts/start_local_cluster.sh
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CUSTSEG_VENV:-$ROOT/.venv}"
# The pip-installed pyspark is a full Spark distribution (bin/spark-class, jars/); no separate download.
SPARK_HOME="${SPARK_HOME:-$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
export SPARK_HOME
# Bind everything to loopback: no firewall questions, and nothing is reachable from outside the machine.
export SPARK_LOCAL_IP=127.0.0.1
CLUSTER_DIR="${CUSTSEG_CLUSTER_DIR:-$ROOT/.cluster}"
MASTER_PORT="${SPARK_MASTER_PORT:-7177}"
MASTER_UI_PORT="${SPARK_MASTER_WEBUI_PORT:-8177}"
WORKER_UI_PORT="${CUSTSEG_WORKER_WEBUI_PORT:-8178}"   # worker i gets WORKER_UI_PORT + i - 1; 0 = any free port
WORKERS="${CUSTSEG_WORKERS:-2}"
WORKER_CORES="${CUSTSEG_WORKER_CORES:-1}"
WORKER_MEMORY="${CUSTSEG_WORKER_MEMORY:-2g}"
MASTER_URL="spark://127.0.0.1:$MASTER_PORT"
MASTER_JSON="http://127.0.0.1:$MASTER_UI_PORT/json/"

DAEMON_CLASSES='org\.apache\.spark\.deploy\.(master\.Master|worker\.Worker)'
is_spark_daemon() {  # pid is alive and is a Spark master or worker JVM (never signal a recycled pid)
  local pid="$1"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "$DAEMON_CLASSES"
}
