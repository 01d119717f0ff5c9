"""The README's walkthrough runs as written on a fresh machine.

The ``bash`` blocks between the README's walkthrough markers are run, in order, by one bash
against a real ``freshclaim serve`` on a free loopback port. They run in a folder that holds
only a copy of ``samples/``, with no ``../shared`` beside it, a fresh ``FRESHCLAIM_HOME`` and
the dataset folder pointing nowhere: what a clean clone gives a new integrator. The run must end
as the README says, with the rotten tomato's claim paid by the machine and the fresh tomato's
claim waiting for a person.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.common import free_port
from claims_api.cli import app
from claims_api.migrate import upgrade
from tests.support.paths import REPO
from tests.support.server import wait_until_ready

README = REPO / "README.md"
START, END = "<!-- walkthrough:start -->", "<!-- walkthrough:end -->"
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.S | re.M)
SAMPLE_PATH = re.compile(r"samples/[\w.-]+\.jpg")


def walkthrough_section(readme: str) -> str:
    assert readme.count(START) == 1 and readme.count(END) == 1, "one pair of walkthrough markers"
    section = readme.split(START, 1)[1]
    assert END in section, "the end marker comes after the start marker"
    return section.split(END, 1)[0]


def walkthrough_script(readme: str) -> str:
    blocks = BASH_BLOCK.findall(walkthrough_section(readme))
    assert blocks, "the walkthrough has bash blocks"
    # Strict mode is the test's, not the README's: a reader's interactive shell must not exit
    # on the first failed command, but here a failed step must fail the run where it happens.
    return "\n".join(["set -euo pipefail", *blocks])


def test_the_walkthrough_uses_only_samples_that_ship_with_their_attribution() -> None:
    section = walkthrough_section(README.read_text())
    assert "shared/" not in section and "datasets/" not in section
    used = set(SAMPLE_PATH.findall(section))
    assert {"samples/tomato-rotten.jpg", "samples/tomato-fresh.jpg"} <= used
    notice = (REPO / "NOTICE").read_text()
    shipped = {f"samples/{p.name}" for p in (REPO / "samples").iterdir()}
    assert used <= shipped
    for sample in shipped:
        assert sample in notice, f"{sample} has no attribution in NOTICE"
        assert (REPO / sample).stat().st_size < 300_000


# What the README says `freshclaim predict` gives for each sample: auto-approvable, and the
# gate's reasons when not (a subset: more reasons may fire without contradicting the README).
SAMPLE_OUTCOMES = {
    "tomato-rotten.jpg": (True, set()),
    "strawberry-rotten.jpg": (True, set()),
    "tomato-fresh.jpg": (False, {"model_not_confident"}),
    "banana-fresh.jpg": (False, {"model_not_confident"}),
    "milk-carton.jpg": (False, {"out_of_distribution"}),
}


def test_every_sample_scores_as_the_readme_says() -> None:
    assert {p.name for p in (REPO / "samples").iterdir()} == set(SAMPLE_OUTCOMES)
    model = sorted((REPO / "models").glob("*.onnx"))[-1]
    paths = [str(REPO / "samples" / name) for name in sorted(SAMPLE_OUTCOMES)]
    result = CliRunner().invoke(app, ["predict", "--json", "--model", str(model), *paths])
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        row = json.loads(line)
        auto, reasons = SAMPLE_OUTCOMES[Path(row["path"]).name]
        assert row["auto_approvable"] is auto, row
        assert reasons <= set(row["reasons"]), row


def _clean_environment(home: Path, bin_dir: Path) -> dict[str, str]:
    """No FRESHCLAIM_* setting from the caller's shell: the walkthrough gets the defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHCLAIM_")}
    env.update(
        FRESHCLAIM_HOME=str(home),
        FRESHCLAIM_DATASET_DIR=str(home.parent / "no-such-dataset"),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    return env


def _freshclaim_command(bin_dir: Path) -> None:
    """``freshclaim`` on PATH runs this checkout's code, whatever is installed elsewhere."""
    bin_dir.mkdir()
    script = bin_dir / "freshclaim"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m claims_api.cli "$@"\n')
    script.chmod(0o755)


@pytest.mark.slow
def test_the_readme_walkthrough_ends_with_one_claim_paid_and_one_in_review(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "samples", clone / "samples")
    assert not (clone.parent / "shared").exists()
    home = tmp_path / "home"
    bin_dir = tmp_path / "bin"
    _freshclaim_command(bin_dir)
    env = _clean_environment(home, bin_dir)
    script = tmp_path / "walkthrough.sh"
    script.write_text(walkthrough_script(README.read_text()))

    home.mkdir()
    upgrade(f"sqlite:///{home / 'freshclaim.db'}")  # what `make run` does before it serves
    freshclaim = str(bin_dir / "freshclaim")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [freshclaim, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=clone,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/readyz", server, log=log)
        run = subprocess.run(
            ["bash", str(script)],
            cwd=clone,
            env={**env, "FC": url},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert run.returncode == 0, f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"

    with sqlite3.connect(home / "freshclaim.db") as db:
        claims = db.execute(
            "SELECT order_id, line_id, status, approved_cents, decision"
            " FROM claims ORDER BY line_id"
        ).fetchall()
    outcome = [(*row[:4], json.loads(row[4])["route"]) for row in claims]
    assert outcome == [
        ("A1001", "1", "paid", 500, "auto"),  # 2 x 250 cents, paid by the machine
        ("A1001", "2", "in_review", None, "manual"),
    ], run.stdout[-4000:]
    reasons = [r["code"] for r in json.loads(claims[1][4])["reasons"]]
    assert reasons == ["model_not_confident"]  # what the README says sends it to a person
