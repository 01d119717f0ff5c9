"""Run every FreshClaim benchmark and check the performance targets: ``make bench``.

    python -m bench.run_all [--out var/bench] [--quick] [--only http,queue,...] [--workers 1,2]

Parts (each prints its own table and writes JSON under ``--out``):

* ``pipeline``: the in-process photo pipeline per stage against the draft-decode floor
  (``bench/bench_pipeline.py``, by the photos developer);
* ``inference``: model inference per image and per batch (``bench/bench_inference.py``);
* ``duplicates``: reused-photo lookup quality (``bench/bench_duplicates.py``);
* ``http``: upload + claim end to end against ``freshclaim serve --workers N`` for each N of
  ``--workers``, SQLite and PostgreSQL, concurrency 1/4/16, peak RSS (:mod:`bench.bench_http`);
* ``compressed``: the same at concurrency 4 (SQLite, one worker) with the 1080x810 quality-85
  photo a mini-program should send, to compare with the 12-MP phone original;
* ``queue``: lease-next + decide with 100,000 waiting claims on PostgreSQL
  (:mod:`bench.bench_queue`).

The scripts of other developers run as subprocesses with their own arguments; a missing one
is reported and skipped. At the end a table compares the figures with the performance
targets and ``summary.json`` records them with the state of the machine (a training run in the
background distorts every timing on a 2-core machine, so the summary says whether one ran).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import bench_http, bench_queue, report
from bench.common import DEFAULT_OUT, REPO, default_model, machine_state, print_table, write_json

PARTS = ("pipeline", "inference", "duplicates", "http", "compressed", "queue")


def _script(name: str) -> Path:
    return REPO / "bench" / f"{name}.py"


def _run_script(name: str, args: list[str]) -> dict[str, Any]:
    """Run ``python -m bench.<name>`` from the repository root as a subprocess, streaming its
    output (as a module, so it imports this checkout's packages like ``make bench`` does)."""
    script = _script(name)
    if not script.exists():
        print(f"\n[{name}] {script.relative_to(REPO)} is not there yet: skipped")
        return {"skipped": "script missing"}
    command = [sys.executable, "-m", f"bench.{name}", *args]
    print(f"\n[{name}] {' '.join(command)}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, check=False)
    return {"returncode": result.returncode, "seconds": round(time.perf_counter() - start, 1)}


def _accepts(name: str, flag: str) -> bool:
    script = _script(name)
    return script.exists() and f'"{flag}"' in script.read_text()


def run_pipeline(out: Path, quick: bool) -> dict[str, Any]:
    args = []
    for flag in ("--json", "--out"):
        if _accepts("bench_pipeline", flag):
            args += [flag, str(out / "pipeline.json")]
            break
    for flag, value in (("--repeats", "2"), ("--real", "5")) if quick else ():
        if _accepts("bench_pipeline", flag):
            args += [flag, value]
    return _run_script("bench_pipeline", args) | {"json": _load(out / "pipeline.json")}


def run_inference(out: Path, quick: bool) -> dict[str, Any]:
    model = default_model(out / "model")
    args = ["--model", str(model), "--json", str(out / "inference.json")]
    if quick:
        args += ["--repeats", "5", "--batches", "1,4", "--threads", "1"]
    return _run_script("bench_inference", args) | {"json": _load(out / "inference.json")}


def run_duplicates(out: Path, quick: bool) -> dict[str, Any]:
    args = ["--out", str(out / "duplicates.json")] + (["--limit", "30"] if quick else [])
    return _run_script("bench_duplicates", args)


def run_http(out: Path, quick: bool, workers: list[int]) -> dict[str, Any]:
    """One run per worker count; phases of all runs together, each tagged with its count."""
    runs = {}
    for count in workers:
        args = ["--out", str(out), "--workers", str(count)] + (["--quick"] if quick else [])
        runs[count] = bench_http.main(args)
    phases = [{**p, "workers": n} for n, run in runs.items() for p in run["phases"]]
    return {"runs": runs, "phases": phases}


def run_compressed(out: Path, quick: bool) -> dict[str, Any]:
    args = ["--out", str(out), "--db", "sqlite", "--concurrency", "4", "--photo", "1080x810q85",
            "--tag", "1080"] + (["--quick"] if quick else [])  # fmt: skip
    return bench_http.main(args)


def run_queue(out: Path, quick: bool) -> dict[str, Any]:
    return bench_queue.main(["--out", str(out)] + (["--quick"] if quick else []))


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The performance targets next to what was measured (None: not measured in this run)."""
    rows = []
    generated = ((results.get("pipeline") or {}).get("json") or {}).get("generated", {})
    for name, entry in generated.items():
        if name.startswith("12MP") and "ratio_to_floor_stored" in entry:
            ratio = round(entry["ratio_to_floor_stored"], 2)
            rows.append(_target(f"pipeline / draft-decode floor, {name} (floor at the stored "
                                f"scale; x{entry.get('ratio_to_floor_model', 0):.2f} to the "
                                "224-px floor)", "<= 1.3", ratio, ratio <= 1.3))  # fmt: skip
    http = results.get("http") or {}
    for phase in http.get("phases", []):
        if phase["concurrency"] != 4:
            continue
        name = f"{phase['db']} w{phase.get('workers', 1)}"
        rows.append(_target(f"{name}: c=4 throughput / in-process", ">= 0.70",
                            phase["vs_inprocess"], phase["vs_inprocess"] >= 0.70))  # fmt: skip
        if "cpu_ratio" in phase:
            rows.append(_target(f"{name}: in-process CPU per photo / server CPU per claim "
                                "(load-robust estimate of the same ratio)", ">= 0.70",
                                phase["cpu_ratio"], phase["cpu_ratio"] >= 0.70))  # fmt: skip
        rows.append(_target(f"{name}: c=4 p99 upload+claim ms", "<= 250",
                            phase["p99_ms"], (phase["p99_ms"] or 1e9) <= 250))  # fmt: skip
    for phase in http.get("phases", []):
        not_paid = phase["auto_not_paid"] or phase.get("probe", {}).get("auto_not_paid") or []
        auto = phase["auto"] or phase.get("probe", {}).get("auto", 0)
        rows.append(_target(f"{phase['db']} w{phase.get('workers', 1)} c={phase['concurrency']}: "
                            "auto-approved paid before response", "all",
                            f"{auto} auto, {len(not_paid)} unpaid",
                            bool(auto) and not not_paid))  # fmt: skip
    for workers in sorted({p.get("workers", 1) for p in http.get("phases", [])}):
        mine = [p for p in http["phases"] if p.get("workers", 1) == workers]
        rss = max(p["peak_rss_mb"] for p in mine)
        pss = max(p.get("peak_pss_mb", 0.0) for p in mine)
        rows.append(_target(f"service peak RSS MB, --workers {workers} (sum over its processes; "
                            f"PSS {pss:.0f} MB)", "<= 600", rss, rss <= 600))  # fmt: skip
    for q in (results.get("queue") or {}).get("results", []):
        rows.append(_target(f"lease-next p99 ms, {q['reviewers']} reviewer(s), "
                            f"{_reviewer_model(q)}, "
                            f"{results['queue']['claims_waiting']} waiting", "<= 20",
                            q["lease_next_p99_ms"], q["lease_next_p99_ms"] <= 20))  # fmt: skip
    return rows


def _reviewer_model(row: dict[str, Any]) -> str:
    mode = row.get("mode", "thread")
    if mode == "paced":
        return f"threads pausing {row['think_ms']} ms on average between decisions"
    return f"one {mode} each, flat out"


def _target(name: str, target: str, measured: Any, ok: bool) -> dict[str, Any]:
    return {"target": name, "wanted": target, "measured": measured, "met": "yes" if ok else "NO"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--quick", action="store_true", help="tiny runs, to check the scripts work")
    p.add_argument("--only", default=",".join(PARTS), type=lambda s: s.split(","))
    p.add_argument("--workers", default="1,2", type=lambda s: [int(v) for v in s.split(",")],
                   help="freshclaim serve --workers counts to measure")  # fmt: skip
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine_before": machine_state(), "quick": args.quick}
    runners = {
        "pipeline": lambda: run_pipeline(args.out, args.quick),
        "inference": lambda: run_inference(args.out, args.quick),
        "duplicates": lambda: run_duplicates(args.out, args.quick),
        "http": lambda: run_http(args.out, args.quick, args.workers),
        "compressed": lambda: run_compressed(args.out, args.quick),
        "queue": lambda: run_queue(args.out, args.quick),
    }
    for part in args.only:
        results[part] = runners[part]()
    results["machine_after"] = machine_state()
    results["targets"] = targets(results)
    print_table("performance targets", results["targets"], ["target", "wanted", "measured", "met"])
    if any(results[k]["training_running"] for k in ("machine_before", "machine_after")):
        print("\nNOTE: a training process ran during the benchmark: timings are distorted.")
    write_json(args.out / "summary.json", results)
    plain = json.loads(json.dumps(results, default=str))
    (args.out / "summary.md").write_text(report.markdown(plain))
    print(f"\nJSON under {args.out}")
    return results


if __name__ == "__main__":
    main()
