"""The benchmark scripts still run (tiny ``--quick`` modes). Speed itself is never asserted
here: the benchmarks print their figures and ``bench.run_all`` compares them with the
targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_http, bench_queue, run_all
from bench.common import PhotoSpec, photo_bytes, postgres_available, summarise
from tests.conftest import dataset_dir


def test_generated_photos_are_deterministic_jpegs(tmp_path: Path) -> None:
    spec = PhotoSpec(1080, 810, 85)
    first = photo_bytes(spec, tmp_path)
    assert first[:3] == b"\xff\xd8\xff"
    assert photo_bytes(spec, tmp_path) == first  # cached
    assert photo_bytes(spec) == first  # and regenerated identically


def test_summary_and_targets() -> None:
    assert summarise([1.0, 2.0, 3.0])["p50_ms"] == 2.0
    phase = {"db": "sqlite", "concurrency": 4, "vs_inprocess": 0.8, "p99_ms": 200.0, "auto": 3,
             "auto_not_paid": [], "peak_rss_mb": 300.0}  # fmt: skip
    rows = run_all.targets({"http": {"phases": [phase]}})
    assert [r["met"] for r in rows] == ["yes", "yes", "yes", "yes"]
    rows = run_all.targets({"http": {"phases": [{**phase, "auto_not_paid": ["clm_1"]}]}})
    assert "NO" in [r["met"] for r in rows]


@pytest.mark.slow
def test_http_benchmark_quick(tmp_path: Path) -> None:
    result = bench_http.main(["--quick", "--db", "sqlite", "--out", str(tmp_path)])
    assert result["inprocess"]["photos_per_s"] > 0
    for phase in result["phases"]:
        assert phase["errors"] == 0
        assert phase["claims_per_s"] > 0
        checked = phase if phase["auto"] else phase["probe"]
        assert not checked["auto_not_paid"]
        if (dataset_dir() / "manifest.csv").exists():  # the payment probe needs real photos
            assert checked["auto"] > 0
    assert (tmp_path / "http-w1.json").exists()


@pytest.mark.slow
def test_queue_benchmark_quick(tmp_path: Path) -> None:
    problem = postgres_available()
    if problem:
        pytest.skip(problem)
    result = bench_queue.main(["--quick", "--out", str(tmp_path)])
    assert [(r["mode"], r["reviewers"], r["decisions"]) for r in result["results"]] == [
        ("thread", 1, 8),
        ("thread", 2, 8),
        ("process", 2, 8),
        ("paced", 2, 8),
    ]
    assert "Index Scan" in result["lease_statements"]["plans"][0]


@pytest.mark.slow
def test_inference_benchmark_runs_from_the_runner(tmp_path: Path) -> None:
    result = run_all.run_inference(tmp_path, quick=True)
    assert result["returncode"] == 0
    assert result["json"]["results"]
