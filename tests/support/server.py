"""Helpers for tests that start a real ``freshclaim serve`` process."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def wait_until_ready(
    url: str, process: subprocess.Popen, timeout: float = 90.0, log: Path | None = None
) -> None:
    """Polls ``url`` until it answers 200; fails at once if the process exits, showing the end
    of its ``log`` when there is one."""

    def tail() -> str:
        return f":\n{log.read_text()[-3000:]}" if log and log.exists() else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited{tail()}"
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} was not ready within {timeout:.0f} s{tail()}")
