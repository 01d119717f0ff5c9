"""A torchvision-style dataset over a FreshClaim manifest (``manifest.csv``).

The developer set in ``../shared/datasets/produce`` and the reviewer-label export use the same
format: ``image, produce, condition, split, source_repo, source_path, width, height`` with
``image`` relative to the manifest's folder. Images are never copied into the repository.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

# re-exported: older callers (tests/model/test_model_shipped.py) take the default folder from here
from data.paths import default_dataset_dir as default_dataset_dir

CONDITIONS = ("fresh", "rotten")


@dataclass(frozen=True)
class Record:
    image: str
    produce: str
    condition: str
    split: str
    source_repo: str
    source_path: str = ""
    width: int = 0
    height: int = 0

    @property
    def rotten(self) -> int:
        return CONDITIONS.index(self.condition)


def read_manifest(root: Path | str) -> list[Record]:
    root = Path(root)
    with open(root / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    records = []
    for row in rows:
        if row["condition"] not in CONDITIONS:
            raise ValueError(f"unknown condition {row['condition']!r} in {row['image']}")
        records.append(
            Record(
                image=row["image"],
                produce=row["produce"],
                condition=row["condition"],
                split=row["split"],
                source_repo=row["source_repo"],
                source_path=row.get("source_path", ""),
                width=int(row.get("width") or 0),
                height=int(row.get("height") or 0),
            )
        )
    return records


def select(
    records: Iterable[Record],
    *,
    splits: Sequence[str] | None = None,
    include_sources: Sequence[str] | None = None,
    exclude_sources: Sequence[str] | None = None,
) -> list[Record]:
    out = []
    for r in records:
        if splits is not None and r.split not in splits:
            continue
        if include_sources is not None and r.source_repo not in include_sources:
            continue
        if exclude_sources is not None and r.source_repo in exclude_sources:
            continue
        out.append(r)
    return out


def load_image(root: Path | str, record: Record) -> Image.Image:
    with Image.open(Path(root) / record.image) as img:
        return img.convert("RGB")


def fingerprint(root: Path | str, records: Sequence[Record]) -> str:
    """sha256 over the manifest rows used (sorted) and each image's bytes: any change to the
    labels, the split or a pixel changes it."""
    digest = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.image):
        row = "\t".join([r.image, r.produce, r.condition, r.split, r.source_repo])
        digest.update(row.encode() + b"\n")
        digest.update(hashlib.sha256((Path(root) / r.image).read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


class ManifestDataset:
    """``dataset[i] -> (transform(image), produce_index, rotten)`` like a torchvision dataset.

    ``produce_labels`` fixes the produce index order (the model's label list). With
    ``preload=True`` every image is decoded once into memory (1,822 photos of <= 256 px are
    ~350 MB), which keeps CPU epochs cheap.
    """

    def __init__(
        self,
        root: Path | str,
        records: Sequence[Record],
        produce_labels: Sequence[str],
        transform: Callable[[Image.Image], object] | None = None,
        preload: bool = True,
    ) -> None:
        self.root = Path(root)
        self.records = list(records)
        self.produce_labels = list(produce_labels)
        self.transform = transform
        self._images = [load_image(self.root, r) for r in self.records] if preload else None

    def __len__(self) -> int:
        return len(self.records)

    def image(self, index: int) -> Image.Image:
        if self._images is not None:
            return self._images[index]
        return load_image(self.root, self.records[index])

    def __getitem__(self, index: int):
        record = self.records[index]
        img = self.image(index)
        if self.transform is not None:
            img = self.transform(img)
        return img, self.produce_labels.index(record.produce), record.rotten
