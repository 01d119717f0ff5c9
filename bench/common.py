"""Helpers shared by the benchmark scripts: test photos, statistics, tables, JSON, the state
of the machine, process memory and PostgreSQL scratch databases."""

from __future__ import annotations

import io
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data.manifest import default_dataset_dir

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "var" / "bench"
DATASET = default_dataset_dir()
# The rotten apple of the README's curl walk-through.
DATASET_PHOTO = "images/00/00229d2a4e4897be9ef7314b784efa35c6fb1f09.jpg"
POSTGRES_URL = os.environ.get(
    "FRESHCLAIM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# --- test photos -------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoSpec:
    """One generated test photo: pixel size, JPEG quality and content."""

    width: int
    height: int
    quality: int
    content: str = "dataset"  # "dataset" (a real photo) or "synthetic" (data.synthetic)
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.content}-{self.width}x{self.height}-q{self.quality}-s{self.seed}"


PHONE_12MP = PhotoSpec(4032, 3024, 90)
MEDIUM = PhotoSpec(1920, 1440, 90)
COMPRESSED = PhotoSpec(1080, 810, 85)
STANDARD_SPECS = (PHONE_12MP, MEDIUM, COMPRESSED)


def rotten_apples() -> list[Path]:
    """The shared dataset's rotten-apple photos, in a fixed order (README's first)."""
    import csv

    manifest = DATASET / "manifest.csv"
    if not manifest.exists():
        return []
    with manifest.open(newline="") as f:
        rows = [r["image"] for r in csv.DictReader(f)
                if r["produce"] == "apple" and r["condition"] == "rotten"]  # fmt: skip
    rows.sort(key=lambda image: (image != DATASET_PHOTO, image))
    return [DATASET / image for image in rows]


_NOISE: dict[int, np.ndarray] = {}


def _noise(height: int, width: int) -> np.ndarray:
    """Sensor-like grain, made once (drawing 12 M normals costs more than the rest)."""
    if width not in _NOISE:
        rng = np.random.default_rng(12345)
        _NOISE[width] = rng.normal(0, 8, size=(height, width, 1)).astype(np.int16)
    return _NOISE[width]


def _textured_12mp(content: str, seed: int) -> Image.Image:
    """A 4032x3024 photo with real detail: a real rotten-apple photo (a different one per
    seed) tiled at 3x (sharp enough for the quality gate), or a procedural rotten apple, plus
    sensor-like grain so the JPEG is about as large as a phone's (3-5 MB at quality 90).
    Different seeds give perceptually different photos, so the reused-photo check does not
    fire when a benchmark uploads many of them."""
    width, height = 4032, 3024
    apples = rotten_apples() if content == "dataset" else []
    if not apples:
        from data.synthetic import make_fruit

        base = make_fruit("apple", rotten=True, size=(width, height), seed=seed)
    else:
        src = Image.open(apples[seed % len(apples)]).convert("RGB")
        src = src.rotate(90 * ((seed // len(apples)) % 4))
        tile = src.resize((src.width * 3, src.height * 3), Image.Resampling.LANCZOS)
        base = Image.new("RGB", (width, height))
        dx, dy = (seed * 97) % tile.width, (seed * 61) % tile.height
        for y in range(-dy, height, tile.height):
            for x in range(-dx, width, tile.width):
                base.paste(tile, (x, y))
    noise = np.roll(_noise(height, width), seed * 7919, axis=1)
    pixels = np.asarray(base, dtype=np.int16) + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def photo_bytes(spec: PhotoSpec, cache: Path | None = None) -> bytes:
    """The JPEG for ``spec`` (smaller sizes are downscaled from the 12-MP one, as a phone or
    a mini-program would), cached under ``cache``."""
    path = cache / f"{spec.name}.jpg" if cache else None
    if path and path.exists():
        return path.read_bytes()
    image = _textured_12mp(spec.content, spec.seed)
    if (spec.width, spec.height) != image.size:
        image = image.resize((spec.width, spec.height), Image.Resampling.LANCZOS)
    data = jpeg(image, spec.quality)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data


# --- statistics and output ----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarise(ms: Sequence[float]) -> dict[str, float]:
    """n, mean, p50, p95, p99 and max of a list of milliseconds."""
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }


def print_table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A plain fixed-width table of ``columns`` from ``rows``."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return "" if value is None else str(value)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def machine_state() -> dict[str, Any]:
    """What else ran while we measured: CPUs, load average and any training process."""
    training = subprocess.run(
        ["pgrep", "-af", "training"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "training_running": bool(training),
        "training_processes": training.splitlines(),
    }


# --- models -------------------------------------------------------------------------------


def default_model(scratch: Path | None = None) -> Path:
    """The newest ``models/*.onnx``, else the tiny test model built under ``scratch``."""
    models = sorted((REPO / "models").glob("*.onnx"))
    if models:
        return models[-1]
    from tests.support.tiny_model import build_tiny_model

    folder = scratch or Path(tempfile.mkdtemp(prefix="freshclaim-bench-"))
    return build_tiny_model(folder / "tiny.onnx")


# --- processes and ports --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (from /proc/<pid>/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def postgres_cpu_seconds() -> float | None:
    """CPU seconds used so far by this host's PostgreSQL server: every ``postgres`` process,
    plus what its exited children (closed backends) used, from /proc. None when there is no
    such process to read (the database runs elsewhere, or no /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition("(")[2].rpartition(")")
        if name != "postgres":
            continue
        fields = rest.split()
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        found = True
    return total / tick if found else None


def _pss_kb(pid: int) -> int:
    """Proportional set size: shared pages (libraries, copy-on-write) split among sharers."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_mb(pids: Sequence[int]) -> dict[str, float]:
    """Current RSS and PSS summed over ``pids`` (RSS counts shared pages once per process,
    PSS splits them: the sum of PSS is what the processes really use together) and the
    largest peak RSS (VmHWM) of any one of them."""
    return {
        "rss_mb": round(sum(_status_kb(p, "VmRSS") for p in pids) / 1024, 1),
        "pss_mb": round(sum(_pss_kb(p) for p in pids) / 1024, 1),
        "max_hwm_mb": round(max([_status_kb(p, "VmHWM") for p in pids] or [0]) / 1024, 1),
        "sum_hwm_mb": round(sum(_status_kb(p, "VmHWM") for p in pids) / 1024, 1),
    }


# --- PostgreSQL scratch database ----------------------------------------------------------------


def postgres_available(url: str = POSTGRES_URL) -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {url} is not reachable: {type(exc).__name__}"
    return None


@contextmanager
def scratch_postgres(prefix: str, url: str = POSTGRES_URL) -> Iterator[str]:
    """A fresh database ``<prefix>_<hex>`` on the server of ``url``, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
