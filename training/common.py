"""Shared pieces of the training scripts: the data of one run and turning photos into tensors
with the service's own preprocessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from claims_api.inference.metadata import OTHER_LABEL, InputSpec
from claims_api.inference.preprocess import to_model_input
from data.manifest import Record, fingerprint, load_image, read_manifest, select
from data.negatives import make_others


@dataclass
class Item:
    """One photo of an evaluation or training set."""

    image: Image.Image
    produce: str  # OTHER_LABEL for generated "not produce" photos
    rotten: int  # 1 rotten, 0 fresh, -1 not produce
    source: str
    path: str = ""


@dataclass
class RunData:
    root: Path
    produce_labels: list[str]
    splits: dict[str, list[Item]] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    fingerprint: str = ""


def items_from_records(root: Path, records: list[Record]) -> list[Item]:
    return [Item(load_image(root, r), r.produce, r.rotten, r.source_repo, r.image) for r in records]


def other_items(count: int, split: str, seed: int, size: int = 224) -> list[Item]:
    return [
        Item(img, OTHER_LABEL, -1, f"generated:{kind}", f"other/{split}/{i}")
        for i, (kind, img) in enumerate(make_others(count, split, seed, size))
    ]


def load_run_data(
    root: Path | str,
    *,
    exclude_sources: list[str] | None = None,
    others: int = 400,
    seed: int = 0,
    limit: int | None = None,
) -> RunData:
    """Train/val/test items of the manifest (minus excluded sources) plus generated ``other``
    photos. Produce labels: the kinds present in the training split, sorted, then ``other``."""
    root = Path(root)
    records = select(read_manifest(root), exclude_sources=exclude_sources or None)
    if limit:
        records = [
            r
            for s in ("train", "val", "test")
            for r in [x for x in records if x.split == s][:limit]
        ]
    kinds = sorted({r.produce for r in records if r.split == "train"})
    data = RunData(root, [*kinds, OTHER_LABEL], records=records)
    for split in ("train", "val", "test"):
        chosen = [r for r in records if r.split == split and r.produce in kinds]
        data.splits[split] = items_from_records(root, chosen) + other_items(others, split, seed)
    data.fingerprint = fingerprint(root, records) + f"+others({others},seed={seed})"
    return data


def to_tensor_batch(images: list[Image.Image], spec: InputSpec):
    import torch

    return torch.from_numpy(np.stack([to_model_input(img, spec) for img in images]))
