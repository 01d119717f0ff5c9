"""Export reviewer-labelled photos as a training set in the manifest format of ``data/``.

Who: only customers who have training consent *at export time* and are not erased; erased
photos never. What: a photo's label comes from three sources, and where they disagree the
more specific one wins (the documented rule):

1. ``photo_label`` — a reviewer labelled this very photo (``PUT /v1/review/photos/{id}/label``);
2. ``audit`` — an audit review's verdict on an auto-approved claim, given to its photos;
3. ``review`` — a reviewer's decision on the claim, given to its photos: approve means
   rotten, a rejection as ``not_spoiled`` means fresh; other outcomes say nothing about the
   produce's condition and give no label.

Within one source the latest label wins. ``not_produce`` and ``unclear`` are not conditions
of the manifest and are left out (counted in the datasheet). Exact copies (same stored or
original sha256) and near-duplicates (pHash + dHash distance of the whole photo at most the
policy's ``duplicate_max_distance``, the service's own stored hashes) are kept once, the
earliest. The split is by customer (a salted hash of the id), so no customer's photos are on
both sides of a split; customer ids are not written.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_api.claims.models import Claim, ClaimPhoto
from claims_api.orders.models import Customer, OrderLine
from claims_api.photos.models import Photo
from claims_api.photos.storage import PhotoStorage
from claims_api.review.models import PhotoLabel, ReviewDecision

SOURCE_RANK = {"photo_label": 0, "audit": 1, "review": 2}  # lower wins
SPLITS = (("train", 0.8), ("val", 0.9), ("test", 1.0))  # cumulative shares
SOURCE_REPO = "freshclaim-service"
MANIFEST_FIELDS = (
    "image",
    "produce",
    "condition",
    "split",
    "source_repo",
    "source_path",
    "width",
    "height",
)


@dataclass(frozen=True)
class Label:
    photo_id: str
    condition: str  # rotten | fresh | not_produce | unclear
    produce: str | None
    source: str
    at: datetime

    def beats(self, other: Label) -> bool:
        mine, theirs = SOURCE_RANK[self.source], SOURCE_RANK[other.source]
        return mine < theirs or (mine == theirs and self.at > other.at)


@dataclass
class Datasheet:
    since: str
    exported_at: str
    photos: int = 0
    per_class: Counter = field(default_factory=Counter)
    per_kind: Counter = field(default_factory=Counter)
    per_month: Counter = field(default_factory=Counter)
    per_source: Counter = field(default_factory=Counter)
    per_split: Counter = field(default_factory=Counter)
    excluded: Counter = field(default_factory=Counter)
    labelled_customers: int = 0
    consenting_customers: int = 0

    def to_dict(self) -> dict[str, Any]:
        share = (
            self.consenting_customers / self.labelled_customers if self.labelled_customers else None
        )
        return {
            "since": self.since,
            "exported_at": self.exported_at,
            "photos": self.photos,
            "per_class": dict(self.per_class),
            "per_kind": dict(self.per_kind),
            "per_month": dict(sorted(self.per_month.items())),
            "per_label_source": dict(self.per_source),
            "per_split": dict(self.per_split),
            "excluded": dict(self.excluded),
            "labelled_customers": self.labelled_customers,
            "consenting_customers": self.consenting_customers,
            "consent_share": share,
            "conflict_rule": "photo_label > audit > review; within a source the latest",
        }


def _photo_labels(session: Session, since: datetime) -> list[Label]:
    rows = session.scalars(select(PhotoLabel).where(PhotoLabel.labelled_at >= since))
    return [Label(r.photo_id, r.condition, r.produce, "photo_label", r.labelled_at) for r in rows]


def _claim_photos(session: Session, claim_ids: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if claim_ids:
        for link in session.scalars(select(ClaimPhoto).where(ClaimPhoto.claim_id.in_(claim_ids))):
            out.setdefault(link.claim_id, []).append(link.photo_id)
    return out


def _review_labels(session: Session, since: datetime) -> list[Label]:
    rows = session.execute(
        select(ReviewDecision, OrderLine.produce)
        .join(Claim, Claim.id == ReviewDecision.claim_id)
        .join(
            OrderLine, (OrderLine.order_id == Claim.order_id) & (OrderLine.line_id == Claim.line_id)
        )
        .where(ReviewDecision.decided_at >= since)
    ).all()
    photos = _claim_photos(session, {d.claim_id for d, _ in rows})
    labels = []
    for decision, produce in rows:
        condition = _review_condition(decision)
        if condition is None:
            continue
        for photo_id in photos.get(decision.claim_id, []):
            labels.append(Label(photo_id, condition, produce, "review", decision.decided_at))
    return labels


def _review_condition(decision: ReviewDecision) -> str | None:
    if decision.outcome == "approve":
        return "rotten"
    if decision.outcome == "reject" and decision.reason_code == "not_spoiled":
        return "fresh"
    return None


def _audit_labels(session: Session, since: datetime) -> list[Label]:
    state = Claim.decision["audit"]["state"].as_string()
    rows = session.execute(
        select(Claim, OrderLine.produce)
        .join(
            OrderLine, (OrderLine.order_id == Claim.order_id) & (OrderLine.line_id == Claim.line_id)
        )
        .where(state == "done")
    ).all()
    labels = []
    for claim, produce in rows:
        verdict = claim.decision["audit"]["verdict"]
        at = datetime.fromisoformat(verdict["at"])
        if at < since:
            continue
        for photo_id in claim.photo_ids:
            labels.append(
                Label(photo_id, verdict["verdict"], verdict.get("produce") or produce, "audit", at)
            )
    return labels


def resolve(labels: list[Label]) -> dict[str, Label]:
    """One label per photo by the conflict rule."""
    chosen: dict[str, Label] = {}
    for label in labels:
        current = chosen.get(label.photo_id)
        if current is None or label.beats(current):
            chosen[label.photo_id] = label
    return chosen


def _pairs(hashes: dict, *, with_queries: bool) -> list[tuple[int, int]]:
    """The whole photo's (pHash, dHash); with its 8 rotated/flipped query hashes too."""
    try:
        pairs = [(int(hashes["phash"], 16), int(hashes["dhash"], 16))]
        if with_queries:
            pairs += [(int(p, 16), int(d, 16)) for p, d in hashes.get("queries", [])]
    except (KeyError, TypeError, ValueError):
        return []
    return pairs


def _near(photo: Photo, kept: Photo, max_distance: int) -> bool:
    """Near copies, as the upload check sees them: a rotated or flipped copy matches too."""
    whole = _pairs(kept.hashes, with_queries=False)
    return any(
        (p ^ kp).bit_count() + (d ^ kd).bit_count() <= max_distance
        for p, d in _pairs(photo.hashes, with_queries=True)
        for kp, kd in whole
    )


def deduplicate(photos: list[Photo], max_distance: int) -> tuple[list[Photo], int]:
    """The earliest of each group of exact or near copies; and how many were dropped.
    Pairwise on the stored hashes: an export is thousands of photos, not millions."""
    kept: list[Photo] = []
    seen: set[str] = set()
    for photo in sorted(photos, key=lambda p: (p.created_at, p.id)):
        digests = {photo.sha256, photo.original_sha256}
        if digests & seen or any(_near(photo, k, max_distance) for k in kept):
            continue
        seen |= digests
        kept.append(photo)
    return kept, len(photos) - len(kept)


def split_of(customer_id: str, salt: str) -> str:
    draw = int(hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()[:8], 16) / 2**32
    return next(name for name, upto in SPLITS if draw < upto)


def export_dataset(
    session: Session,
    storage: PhotoStorage,
    since: datetime,
    out: Path,
    max_distance: int,
    salt: str = "freshclaim-export",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Writes ``out/manifest.csv``, ``out/images/`` and ``out/datasheet.{json,md}``; returns
    the datasheet."""
    now = now or datetime.now().astimezone()
    sheet = Datasheet(since=since.isoformat(), exported_at=now.isoformat())
    chosen = resolve(
        _photo_labels(session, since)
        + _audit_labels(session, since)
        + _review_labels(session, since)
    )
    photos = (
        {p.id: p for p in session.scalars(select(Photo).where(Photo.id.in_(list(chosen))))}
        if chosen
        else {}
    )
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer).where(
                Customer.id.in_({p.customer_id for p in photos.values() if p.erased_at is None})
            )
        )
    }
    sheet.labelled_customers = len(customers)
    allowed = {c.id for c in customers.values() if c.training_consent and c.erased_at is None}
    sheet.consenting_customers = len(allowed)
    usable: list[Photo] = []
    for photo_id, label in chosen.items():
        photo = photos.get(photo_id)
        if photo is None or photo.erased_at is not None:
            sheet.excluded["erased"] += 1
        elif photo.customer_id not in allowed:
            sheet.excluded["no_training_consent"] += 1
        elif label.condition not in ("rotten", "fresh"):
            sheet.excluded[f"label_{label.condition}"] += 1
        elif not label.produce:
            sheet.excluded["label_without_produce"] += 1
        else:
            usable.append(photo)
    kept, dropped = deduplicate(usable, max_distance)
    sheet.excluded["duplicate"] += dropped
    _write(out, storage, [(p, chosen[p.id]) for p in kept], salt, sheet)
    return sheet.to_dict()


def _write(
    out: Path, storage: PhotoStorage, rows: list[tuple[Photo, Label]], salt: str, sheet: Datasheet
) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for photo, label in rows:
            image = f"images/{photo.id}.{photo.format.lower() or 'jpg'}"
            (out / image).write_bytes(storage.get(photo.storage_key))
            split = split_of(photo.customer_id, salt)
            writer.writerow(
                {
                    "image": image,
                    "produce": label.produce,
                    "condition": label.condition,
                    "split": split,
                    "source_repo": SOURCE_REPO,
                    "source_path": photo.id,
                    "width": photo.width,
                    "height": photo.height,
                }
            )
            sheet.photos += 1
            sheet.per_class[label.condition] += 1
            sheet.per_kind[label.produce] += 1
            sheet.per_month[photo.created_at.strftime("%Y-%m")] += 1
            sheet.per_source[label.source] += 1
            sheet.per_split[split] += 1
    data = sheet.to_dict()
    (out / "datasheet.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    (out / "datasheet.md").write_text(_markdown(data))


def _markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Datasheet: reviewer-labelled export",
        "",
        f"Labels since {data['since']}, exported {data['exported_at']}: {data['photos']} photos.",
        f"Customers with a labelled photo: {data['labelled_customers']}, with training consent: "
        f"{data['consenting_customers']} (share {data['consent_share']}).",
        f"Conflicting labels: {data['conflict_rule']}.",
    ]
    for key in ("per_class", "per_kind", "per_month", "per_label_source", "per_split", "excluded"):
        lines += ["", f"## {key.replace('_', ' ')}", "", "| value | photos |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in data[key].items()]
    return "\n".join(lines) + "\n"
