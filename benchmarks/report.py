"""Turn benchmark results into ratios against the targets and a Markdown table."""
from __future__ import annotations

# The targets of the benchmark issue, on the 2-core machine described in the results.
FLOOR_TARGET = 3.0     # our total / floor, at 20M transactions
SCALING_TARGET = 10.0  # t(50M) / t(5M): time per transaction flat
DEMO_TARGET = 45.0     # seconds for the README's first command on its sample, JVM start included
# The contract floor has no target: it adds to the floor what any job meeting the design must do.
STAGES = ("ingest_validate", "features", "write_rejected", "preprocess", "k_selection", "final_fit",
          "profiles_and_writes", "report")
PEER_STAGES = ("read", "validate", "features", "k_selection", "final_fit", "writes")
WORK = ("spark_jobs", "spark_stages", "spark_tasks", "delta_commits")
WORKLOADS_WITH_WORK = ("floor", "contract_floor", "ours")  # the Spark workloads; the peer runs no Spark


def scale_label(transactions: int) -> str:
    if transactions >= 1_000_000 and transactions % 1_000_000 == 0:
        return f"{transactions // 1_000_000}M"
    if transactions >= 1_000 and transactions % 1_000 == 0:
        return f"{transactions // 1_000}k"
    return str(transactions)


def spark_version() -> str:
    import pyspark

    return pyspark.__version__


def _total(scale: dict, workload: str) -> float | None:
    return scale.get(workload, {}).get("stages", {}).get("total")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def summary(scales: list[dict]) -> dict:
    """Per scale: totals, ratios, memory; across scales: the scaling ratio t(largest)/t(smallest)."""
    rows = []
    for s in scales:
        ours, floor, peer = _total(s, "ours"), _total(s, "floor"), _total(s, "peer")
        contract_floor = _total(s, "contract_floor")
        transactions = s.get("generate", {}).get("dataset", {}).get("rows", {}).get("transactions")
        rows.append({
            "scale": s["label"], "transactions": transactions, "customers": s.get("ours", {}).get("stages", {}).get(
                "customers"),
            "floor_s": floor, "contract_floor_s": contract_floor, "ours_s": ours, "peer_s": peer,
            "ours_over_floor": _ratio(ours, floor), "contract_floor_over_floor": _ratio(contract_floor, floor),
            "ours_over_contract_floor": _ratio(ours, contract_floor), "ours_over_peer": _ratio(ours, peer),
            "ours_s_per_million_transactions": round(ours / transactions * 1e6, 2) if ours and transactions else None,
            "ours_python_peak_mb": s.get("ours", {}).get("python_peak_mb"),
            "ours_jvm_heap_peak_mb": s.get("ours", {}).get("jvm_heap_peak_mb"),
            "ours_jvm_rss_peak_mb": s.get("ours", {}).get("jvm_rss_peak_mb"),
            "peer_peak_mb": s.get("peer", {}).get("python_peak_mb"),
        })
    timed = [r for r in rows if r["ours_s"] and r["transactions"]]
    scaling = None
    if len(timed) >= 2:
        small, large = timed[0], timed[-1]
        scaling = {"from": small["scale"], "to": large["scale"], "time_ratio": _ratio(large["ours_s"], small["ours_s"]),
                   "transactions_ratio": round(large["transactions"] / small["transactions"], 2)}
    return {"rows": rows, "scaling": scaling}


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def demo_lines(demo: dict | None) -> list[str]:
    """The demo's rounds and, for the first, where its seconds went (stage timings of its two jobs)."""
    if not demo:
        return []
    if "error" in demo:
        return [f"Demo (`{demo['command']}`): failed, {demo['error']}", ""]
    rounds = ", ".join(f"{r['seconds']:.1f} s" + (f" ({r['delta_commits']} Delta commits)" if "delta_commits" in r
                                                   else "") for r in demo["rounds"])
    lines = [f"Demo (`{demo['command']}`, sample present, JVM start included; target {DEMO_TARGET:.0f} s): {rounds}."]
    if demo["rounds"]:
        stages = demo["rounds"][0]["stages"]
        lines += ["", *_table(["stage", "seconds"], [[name, t] for name, t in stages.items()]),
                  "", f"Outside these stages (JVM and session start, sample check, report): "
                      f"{demo['rounds'][0]['seconds'] - sum(stages.values()):.1f} s."]
    return [*lines, ""]


def markdown(results: dict) -> str:
    m, rows = results["machine"], results["summary"]["rows"]
    memory = results["settings"]["driver_memory"]
    lines = [f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}; {m['os']}; {m['java']}; "
             f"Python {m['python']}; Spark {m['spark']} local[2]; driver memory {memory}.", ""]
    lines += demo_lines(results.get("demo"))
    lines += _table(
        ["scale", "transactions", "customers", "floor s", "contract floor s", "ours s", "peer s", "ours / floor",
         "contract floor / floor", "ours / contract floor", "ours / peer", "ours s per 1M txns", "python peak MB",
         "JVM heap peak MB", "JVM RSS peak MB", "peer peak MB"],
        [[r["scale"], r["transactions"], r["customers"], r["floor_s"], r["contract_floor_s"], r["ours_s"], r["peer_s"],
          r["ours_over_floor"], r["contract_floor_over_floor"], r["ours_over_contract_floor"], r["ours_over_peer"],
          r["ours_s_per_million_transactions"], r["ours_python_peak_mb"],
          r["ours_jvm_heap_peak_mb"], r["ours_jvm_rss_peak_mb"], r["peer_peak_mb"]] for r in rows])
    scaling = results["summary"]["scaling"]
    if scaling:
        lines += ["", f"Scaling: t({scaling['to']}) / t({scaling['from']}) = {scaling['time_ratio']} for "
                      f"{scaling['transactions_ratio']}x the transactions."]
    lines += ["", "Our stages (seconds):", ""]
    lines += _table(["scale", *STAGES], [[s["label"], *[s.get("ours", {}).get("stages", {}).get(st) for st in STAGES]]
                                         for s in results["scales"]])
    lines += ["", "What each Spark workload ran (from the session's status tracker; Delta commits: the commit files it "
                  "added under its output folder):", ""]
    lines += _table(["scale", "workload", *WORK], [[s["label"], w, *[s[w]["work"].get(k) for k in WORK]]
                                                   for s in results["scales"] for w in WORKLOADS_WITH_WORK
                                                   if "work" in s.get(w, {})])
    lines += ["", "Peer stages (seconds):", ""]
    lines += _table(["scale", *PEER_STAGES], [[s["label"], *[s.get("peer", {}).get("stages", {}).get(st)
                                                             for st in PEER_STAGES]] for s in results["scales"]])
    errors = [(s["label"], w, s[w]["error"]) for s in results["scales"] for w in s if isinstance(s[w], dict)
              and "error" in s[w]]
    if errors:
        lines += ["", "Errors:", *[f"- {label} {w}: {e}" for label, w, e in errors]]
    return "\n".join(lines) + "\n"
