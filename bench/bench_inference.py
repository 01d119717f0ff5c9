"""Inference cost of the shipped model with onnxruntime on this machine.

    python -m bench.bench_inference [--model models/<file>.onnx] [--json models/report/bench.json]

Times ``Classifier.score_batch`` (the service's call: onnxruntime + softmax + gates) on
preprocessed inputs at batch 1 and larger batches, and preprocessing of a 640x480 photo
separately. Prints a table and writes JSON. Target: <= 5 ms per image at batch 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from claims_api.inference.model import Classifier
from data.synthetic import make_fruit


def default_model() -> Path:
    models = sorted((Path(__file__).resolve().parent.parent / "models").glob("*.onnx"))
    if not models:
        raise SystemExit("no model in models/")
    return models[-1]


def time_call(fn, repeats: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--json", type=Path, default=Path("reports/bench.json"))
    args = p.parse_args(argv)
    model = args.model or default_model()
    photo = make_fruit("apple", rotten=True, size=(640, 480), seed=1)
    results = []
    for threads in (int(t) for t in args.threads.split(",")):
        clf = Classifier(model, intra_op_threads=threads)
        x1 = clf.prepare(photo)
        for batch in (int(b) for b in args.batches.split(",")):
            x = np.repeat(x1[None], batch, axis=0)
            repeats = max(5, args.repeats // batch)
            ms = time_call(lambda x=x, clf=clf: clf.score_batch(x), repeats)
            med = statistics.median(ms)
            results.append(
                {
                    "threads": threads,
                    "batch": batch,
                    "ms_per_batch": med,
                    "ms_per_image": med / batch,
                    "p90_ms_per_batch": float(np.percentile(ms, 90)),
                    "repeats": repeats,
                }
            )
    prep = statistics.median(time_call(lambda: clf.prepare(photo), 30))
    load = os.getloadavg()
    out = {
        "model": model.name,
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} during the run",
        "load_average_1m": load[0],
        "preprocess_640x480_ms": prep,
        "results": results,
    }
    print(f"{'threads':>7} {'batch':>5} {'ms/batch':>9} {'ms/image':>9} {'p90 ms/batch':>12}")
    for r in results:
        print(
            f"{r['threads']:>7} {r['batch']:>5} {r['ms_per_batch']:>9.2f} "
            f"{r['ms_per_image']:>9.2f} {r['p90_ms_per_batch']:>12.2f}"
        )
    print(
        f"preprocess 640x480 photo: {prep:.2f} ms; load average {load[0]:.1f} "
        f"({os.cpu_count()} CPUs: above that, other processes slowed these numbers)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
