"""``training.train --resume``: a run stopped after an epoch and resumed from its ``last.pt``
ends with exactly the weights and gate of a run that was never stopped; a resume that could
not end there (other arguments, other data, an old ``last.pt``) is refused. Tiny network on
procedural photos: a few seconds on CPU."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="needs the train extra (torch, torchvision): pip install -e '.[train]'"
)
pytestmark = pytest.mark.torch

from data.synthetic import synthetic_manifest  # noqa: E402
from training import train  # noqa: E402

# The Mahalanobis gate draws augmented photos after training, so it also checks that the
# random state after the last epoch is the uninterrupted run's.
TINY = [
    "--arch",
    "tiny",
    "--no-pretrained",
    "--size",
    "32",
    "--epochs",
    "3",
    "--batch-size",
    "6",
    "--others",
    "4",
    "--threads",
    "1",
    "--gate",
    "mahalanobis",
    "--paste-p",
    "0",
]


class Interrupted(Exception):
    """Stands in for the operator's Ctrl-C or a lost machine."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_manifest(tmp_path_factory.mktemp("data"))


def run(root: Path, out: Path, *extra: str) -> Path:
    return train.main(["--dataset-dir", str(root), "--out", str(out), *TINY, *extra])


def interrupt_before_epoch(monkeypatch: pytest.MonkeyPatch, stop: int) -> None:
    real = train.train_one_epoch

    def train_until_stopped(*args, **kwargs):
        epoch = inspect.signature(real).bind(*args, **kwargs).arguments["epoch"]
        if epoch == stop:
            raise Interrupted(f"stopped before epoch {epoch + 1}")
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", train_until_stopped)


def test_interrupted_and_resumed_run_ends_with_the_uninterrupted_weights(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = torch.load(run(dataset, tmp_path / "whole"), weights_only=False)

    cut = tmp_path / "cut"
    with monkeypatch.context() as patch:
        interrupt_before_epoch(patch, stop=1)
        with pytest.raises(Interrupted):
            run(dataset, cut)
    assert not (cut / "checkpoint.pt").exists()
    state = torch.load(cut / train.RESUME_FILE, weights_only=True)
    assert state["epoch"] == 0 and len(state["history"]) == 1
    assert {"state_dict", "optimizer", "lr_scheduler", "args", "rng"} <= set(state)
    assert state["lr_scheduler"]["last_epoch"] > 0  # the schedule moved on in epoch 1

    resumed = torch.load(
        run(dataset, cut, "--resume", str(cut / train.RESUME_FILE)), weights_only=False
    )
    assert resumed["state_dict"].keys() == whole["state_dict"].keys()
    different = [
        name
        for name, tensor in whole["state_dict"].items()
        if not torch.equal(tensor, resumed["state_dict"][name])
    ]
    assert different == []
    for key in ("projection", "projected_means"):
        np.testing.assert_array_equal(resumed["gate"][key], whole["gate"][key])
    strip = ("elapsed_s",)
    assert [{k: v for k, v in h.items() if k not in strip} for h in resumed["history"]] == [
        {k: v for k, v in h.items() if k not in strip} for h in whole["history"]
    ]
    # the recorded command is the one that reproduces the weights, not the resume
    assert "--resume" not in resumed["command"]
    assert "--resume" in resumed["resume_command"]


def test_resume_that_could_not_reproduce_the_run_is_refused(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(dataset, out, "--epochs", "1")
    last = str(out / train.RESUME_FILE)

    with pytest.raises(SystemExit, match=r"arguments differ .*lr: 0\.001 -> 0\.01"):
        run(dataset, out, "--epochs", "1", "--lr", "0.01", "--resume", last)
    with pytest.raises(SystemExit, match=r"arguments differ .*epochs: 1 -> 2"):
        run(dataset, out, "--epochs", "2", "--resume", last)

    other = synthetic_manifest(tmp_path / "other-data", per_cell=7)
    with pytest.raises(SystemExit, match="dataset differs"):
        run(other, out, "--epochs", "1", "--resume", last)

    old_format = tmp_path / "old-last.pt"  # what last.pt held before it was resumable
    torch.save(
        {"state_dict": torch.load(last, weights_only=True)["state_dict"], "history": []}, old_format
    )
    with pytest.raises(SystemExit, match="not a resumable checkpoint"):
        run(dataset, out, "--epochs", "1", "--resume", str(old_format))

    # where files go and how many threads run are free to change
    moved = run(
        dataset, tmp_path / "elsewhere", "--epochs", "1", "--threads", "2", "--resume", last
    )
    assert moved.exists()


@pytest.mark.parametrize("stopped_part_way", [True, False])
def test_pipeline_resume_passes_the_runs_last_checkpoint_to_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped_part_way: bool
) -> None:
    from training import pipeline

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if stopped_part_way:
        (run_dir / train.RESUME_FILE).write_bytes(b"")
    seen: list[list[str]] = []

    def record_and_stop(argv: list[str]) -> Path:
        seen.append(argv)
        raise Interrupted("training is not under test here")

    monkeypatch.setattr(train, "main", record_and_stop)
    with pytest.raises(Interrupted):
        pipeline.main(["--dataset-dir", str(tmp_path), "--run", str(run_dir), "--resume"])
    (train_argv,) = seen
    assert ("--resume" in train_argv) == stopped_part_way
    if stopped_part_way:
        assert train_argv[train_argv.index("--resume") + 1] == str(run_dir / train.RESUME_FILE)
