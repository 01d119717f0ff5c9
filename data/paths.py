"""Where the developer dataset lives: the one definition that training, the tests and the
benchmarks share, so that moving the dataset is a change in one place."""

from __future__ import annotations

import os
from pathlib import Path

DATASET_ENV = "FRESHCLAIM_DATASET_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASET_DIR = REPO_ROOT.parent / "shared" / "datasets" / "produce"


def default_dataset_dir() -> Path:
    """``$FRESHCLAIM_DATASET_DIR`` or ``../shared/datasets/produce`` next to the repository
    (an empty variable counts as unset)."""
    env = os.environ.get(DATASET_ENV)
    if env:
        return Path(env)
    return SHARED_DATASET_DIR.resolve()
