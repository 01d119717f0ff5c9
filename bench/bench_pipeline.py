"""Per-stage timings of the in-process photo pipeline against the JPEG decoder's own floor.

    .venv/bin/python -m bench.bench_pipeline [--repeats 15] [--real 300] [--out FILE.json]

Inputs: generated phone-like JPEGs at 4032×3024 (12 MP), 1920×1440 and 1080×810 (quality 90,
realistic content: a real dataset photo upscaled with sensor-like noise, and a procedural
fruit), each with EXIF orientation 1 and 6, plus the real photos of the shared dataset.

For every input, in the same run and interleaved with the pipeline (so background load hits
both alike), two floors are timed:

* ``floor_model``: ``Image.open; draft("RGB", (224, 224)); load`` — the cheapest decode that
  can feed the model (1/8 DCT scale for a 12-MP JPEG);
* ``floor_stored``: ``Image.open; draft(...); load`` at the scale the pipeline decodes for the
  ≤ 2048-px reviewer copy (1/2 for 12 MP) — the floor for a service that keeps that copy.

The pipeline is ``process_upload`` (sniff → header/limits → draft decode → EXIF → orientation →
small image → re-encode of the stored copy → quality gate → hashes → sha256) plus the model's
input tensor (``to_model_input``, 224 px), made as its ``alongside`` work while the stored copy
is encoded, as the service scores the photo there. Medians over ``--repeats``; the ratio column is
median(pipeline) / median(floor). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, features

from claims_api.inference.metadata import InputSpec
from claims_api.inference.preprocess import to_model_input
from claims_api.photos.imaging import DEFAULT_LIMITS, ImageLimits, process_upload
from data.paths import default_dataset_dir
from data.synthetic import make_fruit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = default_dataset_dir()
MODEL_SPEC = InputSpec(size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
SIZES = {"12MP": (4032, 3024), "1920": (1920, 1440), "1080": (1080, 810)}
STAGES = ("sniff", "header", "decode", "orient", "small", "quality", "hashes", "model_input",
          "wait_helpers")  # fmt: skip
HELPER_STAGES = ("encode", "sha256")  # run on a helper thread beside quality + hashes


def phone_jpeg(
    content: Image.Image, size: tuple[int, int], orientation: int, seed: int = 0
) -> bytes:
    """``content`` scaled to ``size`` with sensor-like noise, saved like a phone (q90, EXIF)."""
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = np.asarray(content.resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
    pixels += rng.normal(0.0, 4.0, size=(height, width, 1)).astype(np.float32)
    pixels += rng.normal(0.0, 2.0, size=(height, width, 3)).astype(np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F], exif[0x0110] = "Bench", "Phone"
    exif.get_ifd(0x8769)[0x9003] = "2026:11:24 18:05:09"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def stored_draft_request(size: tuple[int, int], limits: ImageLimits) -> tuple[int, int]:
    """The draft size process_upload asks for (see imaging._draft_for_storage)."""
    width, height = size
    longest = max(width, height)
    scale = min(longest, limits.stored_max_side) * limits.stored_min_fraction / longest
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def floor_decode(data: bytes, request: tuple[int, int]) -> None:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", request)
    image.load()


SERIAL = replace(DEFAULT_LIMITS, overlap_work=False)


def pipeline(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> dict[str, float]:
    photo = process_upload(data, limits, alongside=lambda small: to_model_input(small, MODEL_SPEC))
    timings = dict(photo.timings_ms)
    timings["model_input"] = timings.pop("alongside")
    timings["cpu_sum"] = sum(
        timings.get(stage, 0.0) for stage in (*STAGES, *HELPER_STAGES)
    ) - timings.get("wait_helpers", 0.0)
    return timings


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000.0


def cpu_timed(function: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, process CPU ms — all threads, immune to other processes' load)."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return (time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0


def measure(data: bytes, repeats: int) -> dict:
    size = Image.open(io.BytesIO(data)).size
    stored_request = stored_draft_request(size, DEFAULT_LIMITS)
    floors_model, floors_stored, runs, serial_runs = [], [], [], []
    cpu_floor_model, cpu_floor_stored, cpu_pipeline = [], [], []
    pipeline(data)  # warm up
    for _ in range(repeats):
        wall, cpu = cpu_timed(lambda: floor_decode(data, (224, 224)))
        floors_model.append(wall)
        cpu_floor_model.append(cpu)
        started_cpu = time.process_time()
        runs.append(pipeline(data))
        cpu_pipeline.append((time.process_time() - started_cpu) * 1000.0)
        wall, cpu = cpu_timed(lambda: floor_decode(data, stored_request))
        floors_stored.append(wall)
        cpu_floor_stored.append(cpu)
        serial_runs.append(pipeline(data, SERIAL))
    names = (*STAGES, *HELPER_STAGES, "total", "cpu_sum")
    stages = {stage: statistics.median(run.get(stage, 0.0) for run in runs) for stage in names}
    best = {stage: min(run.get(stage, 0.0) for run in runs) for stage in names}
    floor_model = statistics.median(floors_model)
    floor_stored = statistics.median(floors_stored)
    serial_total = statistics.median(run["total"] for run in serial_runs)
    return {
        "bytes": len(data),
        "size": list(size),
        "stages_ms": stages,
        "stages_min_ms": best,
        "total_ms": stages["total"],
        "total_min_ms": best["total"],
        "cpu_sum_ms": stages["cpu_sum"],
        "serial_total_ms": serial_total,
        "serial_total_min_ms": min(run["total"] for run in serial_runs),
        "floor_model_ms": floor_model,
        "floor_model_min_ms": min(floors_model),
        "floor_stored_ms": floor_stored,
        "floor_stored_min_ms": min(floors_stored),
        "ratio_to_floor_model": stages["total"] / floor_model,
        "ratio_to_floor_stored": stages["total"] / floor_stored,
        "ratio_min_to_floor_model_min": best["total"] / min(floors_model),
        "ratio_min_to_floor_stored_min": best["total"] / min(floors_stored),
        "serial_ratio_to_floor_stored": serial_total / floor_stored,
        "cpu_ms": {
            "pipeline": statistics.median(cpu_pipeline),
            "floor_model": statistics.median(cpu_floor_model),
            "floor_stored": statistics.median(cpu_floor_stored),
        },
        "cpu_ratio_to_floor_model": statistics.median(cpu_pipeline)
        / statistics.median(cpu_floor_model),
        "cpu_ratio_to_floor_stored": statistics.median(cpu_pipeline)
        / statistics.median(cpu_floor_stored),
    }


def real_photos(folder: Path, limit: int) -> dict:
    with (folder / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = rows[:: max(1, len(rows) // limit)][:limit] if limit else rows
    totals, floors, passed = [], [], 0
    stage_runs: dict[str, list[float]] = {stage: [] for stage in (*STAGES, *HELPER_STAGES)}
    for row in rows:
        data = (folder / row["image"]).read_bytes()
        floors.append(timed(lambda data=data: floor_decode(data, (224, 224))))
        timings = pipeline(data)
        totals.append(timings["total"])
        for stage in stage_runs:
            stage_runs[stage].append(timings.get(stage, 0.0))
        passed += process_upload(data).quality.ok
    return {
        "photos": len(rows),
        "quality_pass_rate": passed / len(rows),
        "total_ms_median": statistics.median(totals),
        "floor_model_ms_median": statistics.median(floors),
        "ratio_to_floor_model": statistics.median(totals) / statistics.median(floors),
        "stages_ms": {stage: statistics.median(v) for stage, v in stage_runs.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--real", type=int, default=300, help="real photos to time (0 = all)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "pipeline.json")
    args = parser.parse_args()

    have_dataset = (args.dataset / "manifest.csv").is_file()
    contents: dict[str, Image.Image] = {"fruit": make_fruit("orange", size=(1008, 756), seed=3)}
    if have_dataset:
        with (args.dataset / "manifest.csv").open(newline="") as handle:
            first = next(csv.DictReader(handle))
        contents["real_upscaled"] = Image.open(args.dataset / first["image"]).convert("RGB")

    results: dict[str, dict] = {}
    for label, size in SIZES.items():
        for content_name, content in contents.items():
            for orientation in (1, 6):
                data = phone_jpeg(content, size, orientation)
                key = f"{label}/{content_name}/orientation{orientation}"
                results[key] = measure(data, args.repeats)
                print(f"measured {key}", file=sys.stderr)

    columns = (*STAGES, *HELPER_STAGES)
    print(
        f"{'input (medians, ms)':32s} {'MB':>5s} "
        + " ".join(f"{c[:7]:>7s}" for c in columns)
        + f" {'total':>7s} {'cpu':>7s} {'serial':>7s} {'fl224':>6s} {'x':>5s} {'flStore':>7s}"
        f" {'x':>5s} {'x(min)':>6s}"
    )
    for key, r in results.items():
        cells = " ".join(f"{r['stages_ms'][c]:7.2f}" for c in columns)
        print(
            f"{key:32s} {r['bytes'] / 1e6:5.2f} {cells} {r['total_ms']:7.2f} "
            f"{r['cpu_sum_ms']:7.2f} {r['serial_total_ms']:7.2f} {r['floor_model_ms']:6.2f} "
            f"{r['ratio_to_floor_model']:5.2f} {r['floor_stored_ms']:7.2f} "
            f"{r['ratio_to_floor_stored']:5.2f} {r['ratio_min_to_floor_stored_min']:6.2f} | "
            f"{r['cpu_ms']['pipeline']:6.2f} {r['cpu_ms']['floor_model']:8.2f} "
            f"{r['cpu_ratio_to_floor_model']:5.2f} {r['cpu_ms']['floor_stored']:7.2f} "
            f"{r['cpu_ratio_to_floor_stored']:5.2f}"
        )

    real = real_photos(args.dataset, args.real) if have_dataset else None
    if real:
        print(
            f"\nreal photos ({real['photos']}): pipeline {real['total_ms_median']:.2f} ms, "
            f"floor {real['floor_model_ms_median']:.2f} ms, x{real['ratio_to_floor_model']:.2f}, "
            f"quality pass rate {real['quality_pass_rate']:.4f}"
        )
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
            "pillow": Image.__version__,
            "libjpeg_turbo": features.check_feature("libjpeg_turbo"),
        },
        "repeats": args.repeats,
        "limits": {
            "stored_max_side": DEFAULT_LIMITS.stored_max_side,
            "stored_jpeg_quality": DEFAULT_LIMITS.stored_jpeg_quality,
            "small_max_side": DEFAULT_LIMITS.small_max_side,
        },
        "generated": results,
        "real": real,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
