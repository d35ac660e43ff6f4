"""The spark-submits of tests/test_cluster.py, run in the background from the start of the test session.

A master and two 1-core workers (scripts/start_local_cluster.sh), then a probe job and run_pipeline
(scripts/submit.sh) on the golden run's inputs, one after the other in a thread that only waits on those
processes: their minutes overlap the other tests, whose Spark leaves part of the two cores idle. test_cluster.py
waits for each step and checks its result; the session's end stops the cluster (tests/conftest.py).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from helpers import JVM_OPTIONS, MODEL_OVERRIDES, input_overrides

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
ZIP = ROOT / "dist" / "custseg_lib.zip"
TIMEOUT = 1800  # seconds for any one script or submit: a hung cluster fails the tests instead of blocking them
# The cluster's short-lived JVMs (daemons, drivers, executors) run with the tests' JVM options (tests/helpers.py: C1
# only, the serial collector): C2 compiling in five JVMs at once would take the two cores from the tests. Speed only.
JVM_CONF = {"spark.driver.extraJavaOptions": JVM_OPTIONS, "spark.executor.extraJavaOptions": JVM_OPTIONS}
SUBMIT_JVM = tuple(part for key, value in JVM_CONF.items() for part in ("--conf", f"{key}={value}"))
PROBE = """\
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName('custseg-probe').getOrCreate()
rdd = spark.sparkContext.parallelize(range(4), 4)
files = rdd.map(lambda _: __import__('custseg.contract.outputs').contract.outputs.__file__).distinct().collect()
print('CUSTSEG_FILES=' + '|'.join(sorted(files)))
spark.stop()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CommandFailed(AssertionError):
    """A script or spark-submit exited non-zero; the message has its command and the tail of its output."""


def run_logged(cmd: list[str], env: dict[str, str], log_file: Path) -> str:
    """Run a command from the repo root, keep its output in log_file, fail with the output's tail."""
    with log_file.open("w") as handle:
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False,
                                timeout=TIMEOUT)
    output = log_file.read_text()
    if result.returncode != 0:
        raise CommandFailed(f"{' '.join(cmd)} exited {result.returncode}:\n{output[-4000:]}")
    return output


@dataclass(frozen=True)
class Cluster:
    master: str                # spark://127.0.0.1:<port>
    env: dict[str, str]        # the environment the cluster scripts ran with (ports, state folder)
    json: str                  # the master's state as JSON (web UI)
    state: Path                # CUSTSEG_CLUSTER_DIR: logs, pid files, workers' work folders


@dataclass(frozen=True)
class Submitted:
    out_dir: Path              # output.path of the submitted run_pipeline
    overrides: list[str]       # its --set values, on top of conf/cluster.yaml
    log: str                   # spark-submit's output


class ClusterJobs:
    """Start, probe and submit in one background thread; each step's result (or failure) as a Future."""

    def __init__(self, data_dir: Path, base: Path) -> None:
        self.data_dir, self.base = data_dir, base
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cluster")
        self.cluster: Future[Cluster] = self._executor.submit(self._start)
        self.probe: Future[str] = self._executor.submit(self._probe)
        self.pipeline: Future[Submitted] = self._executor.submit(self._pipeline)

    def _start(self) -> Cluster:
        state = self.base / "cluster"
        state.mkdir()
        env = {**os.environ, "CUSTSEG_CLUSTER_DIR": str(state), "SPARK_MASTER_PORT": str(free_port()),
               "SPARK_MASTER_WEBUI_PORT": str(free_port()), "CUSTSEG_WORKER_WEBUI_PORT": "0",
               "SPARK_DAEMON_JAVA_OPTS": JVM_OPTIONS}
        try:
            output = run_logged(["bash", str(SCRIPTS / "start_local_cluster.sh")], env, state / "start.log")
        finally:  # from here on the session's end stops whatever started
            self._env = env
        master = output.strip().splitlines()[-1]
        return Cluster(master=master, env=env, json=f"http://127.0.0.1:{env['SPARK_MASTER_WEBUI_PORT']}/json/",
                       state=state)

    def _probe(self) -> str:
        """A job whose tasks report where their Python imported custseg from."""
        cluster = self.cluster.result()
        run_logged(["bash", str(SCRIPTS / "package.sh")], dict(os.environ), self.base / "package.log")
        probe = self.base / "probe.py"
        probe.write_text(PROBE)
        spark_submit = Path(sys.executable).parent / "spark-submit"
        env = {**cluster.env, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
        return run_logged([str(spark_submit), "--master", cluster.master, *SUBMIT_JVM, "--py-files", str(ZIP),
                           str(probe)], env, self.base / "probe.log")

    def _pipeline(self) -> Submitted:
        """run_pipeline through scripts/submit.sh with conf/cluster.yaml, on the golden run's inputs and model."""
        cluster = self.cluster.result()
        out_dir = self.base / "cluster_out"
        # 8 shuffle partitions, against the local golden run's 2 (a small run's cap is the cores, 2 here too):
        # the outputs must not depend on them.
        overrides = [f"output.path={out_dir}", *input_overrides(self.data_dir), *MODEL_OVERRIDES,
                     "spark.conf.spark.sql.shuffle.partitions=8"]
        # The JVM options hold spaces, which CUSTSEG_SUBMIT_OPTS cannot carry: a spark-defaults.conf beside the
        # library's log4j2.properties in a conf folder of the test's own.
        conf_dir = self.base / "spark_conf"
        conf_dir.mkdir()
        shutil.copy(ROOT / "lib" / "custseg" / "platform" / "log4j2.properties", conf_dir)
        (conf_dir / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in JVM_CONF.items()))
        env = {**cluster.env, "SPARK_MASTER": cluster.master, "SPARK_CONF_DIR": str(conf_dir)}
        log = run_logged(["bash", str(SCRIPTS / "submit.sh"), "run_pipeline", *[f"--set={o}" for o in overrides]],
                         env, self.base / "submit.log")
        return Submitted(out_dir=out_dir, overrides=overrides, log=log)

    def close(self) -> None:
        """Wait for the submissions, then stop the cluster (by its pids) if it started."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        env = getattr(self, "_env", None)
        if env is not None:
            subprocess.run(["bash", str(SCRIPTS / "stop_local_cluster.sh")], cwd=ROOT, env=env, check=False,
                           timeout=TIMEOUT)
            left = list((Path(env["CUSTSEG_CLUSTER_DIR"]) / "pids").glob("*.pid"))
            assert not left, f"stop_local_cluster.sh left pid files behind: {left}"
