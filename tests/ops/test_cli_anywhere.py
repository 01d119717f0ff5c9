"""The command line works from any folder: ``FRESHCLAIM_HOME`` and the model paths
are made absolute once, when the settings are read, and the bundled model is found wherever the
command runs; when no model is found, the error says where it looked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from claims_api.config import Settings
from tests.support.paths import REPO

BUNDLED_MODEL = sorted((REPO / "models").glob("*.onnx"))[-1]


def _freshclaim(cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI of this checkout in ``cwd`` with only the given FRESHCLAIM_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHCLAIM_")}
    env.update({f"FRESHCLAIM_{name.upper()}": value for name, value in settings.items()})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "claims_api.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_home_and_model_paths_are_resolved_once_against_the_starting_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(home=Path("rel-home"), model_dir=Path("models"), policy_file=Path("p.json"))
    monkeypatch.chdir(REPO)  # a later change of folder must not move the files
    assert settings.home == tmp_path / "rel-home"
    assert settings.model_dir == tmp_path / "models"
    assert settings.policy_file == tmp_path / "p.json"
    assert settings.photo_dir == tmp_path / "rel-home" / "photos"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'rel-home' / 'freshclaim.db'}"
    assert Settings(home=Path("~/fc")).home == Path.home() / "fc"


@pytest.mark.slow
def test_migrate_and_predict_work_from_another_folder_with_a_relative_home(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "samples").mkdir(parents=True)
    shutil.copy(REPO / "samples" / "tomato-rotten.jpg", elsewhere / "samples" / "x.jpg")

    migrated = _freshclaim(elsewhere, "migrate", home="rel-home")
    assert migrated.returncode == 0, migrated.stderr
    database = elsewhere / "rel-home" / "freshclaim.db"
    assert database.is_file()
    assert str(database) in migrated.stdout  # the absolute path, not "rel-home/…"

    predicted = _freshclaim(elsewhere, "predict", "--json", "samples/x.jpg", home="rel-home")
    assert predicted.returncode == 0, predicted.stderr
    row = json.loads(predicted.stdout)
    assert row["path"] == "samples/x.jpg"
    assert row["model_version"] == BUNDLED_MODEL.stem  # the bundled model, found from elsewhere
    assert row["produce"] == "tomato"


@pytest.mark.slow
def test_predict_without_a_model_says_where_it_looked(tmp_path: Path) -> None:
    shutil.copy(REPO / "samples" / "tomato-fresh.jpg", tmp_path / "x.jpg")
    result = _freshclaim(tmp_path, "predict", "x.jpg", home="home", model_dir="no-models")
    assert result.returncode == 2
    assert str(tmp_path / "no-models") in result.stderr
    assert "does not exist" in result.stderr
    assert "FRESHCLAIM_MODEL_PATH" in result.stderr and "FRESHCLAIM_MODEL_DIR" in result.stderr
