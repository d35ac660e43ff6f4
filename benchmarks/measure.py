"""What the benchmark records besides time: the machine, peak memory of the Python driver and the JVM, and the
Spark work and Delta commits a workload made."""
from __future__ import annotations

import os
import platform
import re
import resource
import subprocess

from custseg.platform.driver_jvm import default_java_home, driver_jvm
from custseg.platform.runs import last_job_id, stages_and_tasks

COMMIT_FILE = re.compile(r"^\d{20}\.json$")  # one Delta commit: _delta_log/<version, 20 digits>.json


def machine(jvm_cache: bool = False) -> dict[str, object]:
    """Cores, memory, CPU model, OS, Java and Python: the context any absolute number needs. The Java is the
    one the sessions' driver JVMs run (custseg.platform.driver_jvm), with or without its AOT cache."""
    cpu_model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    jvm = driver_jvm(jvm_cache)
    home = jvm.java_home or default_java_home()
    java_cmd = os.path.join(home, "bin", "java") if home else "java"
    java = subprocess.run([java_cmd, "-version"], capture_output=True, text=True, check=False).stderr.splitlines()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu": cpu_model,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": (java[0] if java else "unknown") + (", from its AOT cache" if jvm.cache else ""),
    }


def python_peak_mb() -> float:
    """Peak resident memory of this Python process (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def process_peak_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of another process on this machine."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for process {pid}")


def jvm_memory(spark) -> dict[str, float]:
    """Peak RSS of the Spark JVM (driver and, in local mode, executors) and the peak of its heap pools."""
    jvm = spark.sparkContext._jvm
    pid = int(jvm.java.lang.ProcessHandle.current().pid())
    heap_peak = 0
    for pool in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        if str(pool.getType().toString()) == "Heap memory":
            heap_peak += int(pool.getPeakUsage().getUsed())
    return {"jvm_rss_peak_mb": process_peak_mb(pid), "jvm_heap_peak_mb": round(heap_peak / 2**20, 1)}


def spark_work(after_job: int) -> dict[str, int]:
    """Spark jobs, stages and tasks this session ran since the job with id `after_job` (-1: since it started)."""
    last = last_job_id()
    stages, tasks = stages_and_tasks(after_job, last)
    return {"spark_jobs": last - after_job, "spark_stages": stages, "spark_tasks": tasks}


def delta_commits(folder: str) -> int:
    """Delta commits in the tables under a local folder: the commit files of every _delta_log (0 if none)."""
    return sum(sum(1 for name in files if COMMIT_FILE.match(name))
               for root, _, files in os.walk(folder) if os.path.basename(root) == "_delta_log")
