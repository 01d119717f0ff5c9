"""Markdown tables of a ``bench.run_all`` summary (written as ``summary.md``, pasted into
``docs/performance.md``).

    python -m bench.report [var/bench/summary.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_OUT


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
    return "" if value is None else str(value)


def machine(summary: dict[str, Any]) -> str:
    before, after = summary.get("machine_before", {}), summary.get("machine_after", {})
    busy = before.get("training_running") or after.get("training_running")
    load = f"load average {before.get('loadavg_1m')} → {after.get('loadavg_1m')}"
    state = "a model training ran meanwhile (timings distorted)" if busy else "otherwise idle"
    return f"{before.get('machine', '?')}, Python {before.get('python', '?')}; {load}; {state}"


def http_table(summary: dict[str, Any]) -> str:
    phases = (summary.get("http") or {}).get("phases", [])
    runs = (summary.get("http") or {}).get("runs", {})
    rows = []
    for p in phases:
        run = runs.get(p["workers"]) or runs.get(str(p["workers"])) or {}
        ceiling = run.get("inprocess", {})
        rows.append([p["db"], p["workers"], p["concurrency"], p["claims_per_s"],
                     p.get("inprocess_photos_per_s", ceiling.get("photos_per_s")),
                     p["vs_inprocess"], p.get("cpu_ratio"), p["p50_ms"], p["p95_ms"],
                     p["p99_ms"], p["cpu_ms_per_claim"], ceiling.get("cpu_ms_per_photo"),
                     p["peak_rss_mb"], p.get("peak_pss_mb")])  # fmt: skip
    return _table(
        ["db", "workers", "concurrency", "claims/s", "in-process photos/s", "ratio",
         "CPU ratio", "p50 ms",
         "p95 ms", "p99 ms", "server CPU ms/claim", "in-process CPU ms/photo", "peak RSS MB",
         "peak PSS MB"],
        rows,
    )  # fmt: skip


def queue_table(summary: dict[str, Any]) -> str:
    queue = summary.get("queue") or {}
    rows = [[q.get("mode", "thread"), q["reviewers"], q["decisions_per_s"],
             q["lease_next_p50_ms"], q["lease_next_p99_ms"], q["lease_route_p50_ms"],
             q["lease_route_p99_ms"], q["decide_p50_ms"], q["decide_p99_ms"]]
            for q in queue.get("results", [])]  # fmt: skip
    return f"{queue.get('claims_waiting', '?')} waiting claims, PostgreSQL:\n\n" + _table(
        ["reviewers as", "reviewers", "decisions/s", "lease-next p50", "lease-next p99",
         "lease route p50", "lease route p99", "decide p50", "decide p99"],
        rows,
    )  # fmt: skip


def targets_table(summary: dict[str, Any]) -> str:
    rows = [[t["target"], t["wanted"], t["measured"], t["met"]] for t in summary.get("targets", [])]
    return _table(["target", "wanted", "measured", "met"], rows)


def markdown(summary: dict[str, Any]) -> str:
    parts = [f"Machine: {machine(summary)}.", "", "Upload 12-MP photo + claim over HTTP:", "",
             http_table(summary), "", queue_table(summary), "", targets_table(summary)]  # fmt: skip
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    path = Path(args[0]) if args else DEFAULT_OUT / "summary.json"
    print(markdown(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
