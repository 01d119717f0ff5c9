"""``freshclaim serve --workers N``: one SO_REUSEPORT listening socket per worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import free_port, process_tree
from claims_api.serving import limit_malloc_arenas, reuseport_socket
from tests.support.paths import REPO
from tests.support.server import wait_until_ready


def test_workers_can_each_bind_the_same_port() -> None:
    first = reuseport_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = reuseport_socket("127.0.0.1", port)
    try:
        assert second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


@pytest.mark.slow
def test_serve_with_two_workers_answers_and_stops_on_sigterm(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FRESHCLAIM_HOME": str(tmp_path),
        "FRESHCLAIM_MODEL_PATH": str(tiny_model_path),
        "FRESHCLAIM_SECRET_KEY": "serving-test-" + "x" * 32,
    }
    env.pop("FRESHCLAIM_DATABASE_URL", None)
    command = [sys.executable, "-m", "claims_api.cli"]
    subprocess.run([*command, "migrate"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", server)
        workers = [p for p in process_tree(server.pid) if p != server.pid]
        assert len(workers) >= 2  # two uvicorn workers (+ multiprocessing's resource tracker)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr.decode()[-2000:]


def test_malloc_arenas_are_limited_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    if sys.platform == "linux":
        assert limit_malloc_arenas() is True
