"""Reused and near-duplicate photos: the facts behind the duplicate-photo signals.

For every photo of a claim: one indexed query over ``photo_hashes`` finds the stored windows
that share a pHash or dHash band with any of the photo's 8 rotation/flip query hashes
(``WHERE band0 IN (...) OR ... OR band5 IN (...)``); the exact pHash + dHash distances are
then checked in Python (:func:`claims_api.photos.hashing.is_match`) and, on top of the
per-hash thresholds, the summed distance must stay within the policy's
``duplicate_max_distance`` (near the per-hash thresholds, plain web photos of one produce on a
white background start to collide). Byte-identical uploads (``original_sha256``) are found
with one more query for the whole claim.

A match is then classified:

* another customer's photo -> ``other_customer`` (strong: someone else's photo);
* the customer's own photo (or the very same upload) on another claim -> ``own_other_claim``;
* the customer's own photo on no other claim (a retake or re-upload for this claim) -> fine.

The hashes are greyscale: a match also needs compatible colour signatures where both photos
have one (:func:`claims_api.photos.hashing.colours_compatible`; photos stored before the
signature existed are never vetoed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from claims_api.claims.models import ClaimPhoto
from claims_api.db import flushed_connection
from claims_api.photos import hashing
from claims_api.photos.hashing import HashPair, PhotoHashes
from claims_api.photos.models import Photo, PhotoHash

ReuseKind = Literal["own_other_claim", "other_customer"]
Colour = tuple[int, int]
_BAND_COLUMNS = (
    PhotoHash.band0,
    PhotoHash.band1,
    PhotoHash.band2,  # pHash bands
    PhotoHash.band3,
    PhotoHash.band4,
    PhotoHash.band5,  # dHash bands
)
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class Match:
    """A stored photo that repeats a claim photo."""

    photo_id: str  # the claim's photo
    matched_photo_id: str
    distance: int  # pHash + dHash Hamming distance of the closest pair; 0 for byte-identical
    exact: bool  # the uploaded bytes were identical


@dataclass(frozen=True)
class PhotoReuse:
    """A match that matters: the photo was used on another claim or by another customer."""

    photo_id: str
    matched_photo_id: str
    matched_customer_id: str
    kind: ReuseKind
    distance: int
    exact: bool
    claim_ids: tuple[str, ...]  # other claims the matched photo is attached to

    def to_dict(self) -> dict:
        return {
            "photo_id": self.photo_id,
            "matched_photo_id": self.matched_photo_id,
            "matched_customer_id": self.matched_customer_id,
            "distance": self.distance,
            "exact": self.exact,
            "claim_ids": list(self.claim_ids),
        }


def query_pairs(photo: Photo) -> list[HashPair]:
    return query_pairs_of(photo.hashes)


def query_pairs_of(hashes: dict | None) -> list[HashPair]:
    """The photo's 8 rotation/flip query hashes, stored at upload; photos stored before they
    were kept fall back to the upright whole-image hash."""
    hashes = hashes or {}
    if hashes.get("queries"):
        return [HashPair(int(p, 16), int(d, 16)) for p, d in hashes["queries"]]
    if hashes.get("windows"):
        return [PhotoHashes.from_dict(hashes).whole]
    return []


def candidate_rows(
    session: Session, photo_id: str, queries: Sequence[HashPair]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Stored windows sharing a pHash or dHash band with any query hash (one indexed query;
    the photo itself left out): their photo ids and unsigned pHash / dHash arrays."""
    band_sets = hashing.query_index_band_values(queries)
    params = {f"band{i}": sorted(values) for i, values in enumerate(band_sets)}
    rows = flushed_connection(session).execute(_CANDIDATES, {**params, "photo_id": photo_id}).all()
    ids = [row[0] for row in rows]
    phash = np.array([row[1] for row in rows], dtype=np.int64).view(np.uint64)
    dhash = np.array([row[2] for row in rows], dtype=np.int64).view(np.uint64)
    return ids, phash, dhash


# Built once: the up to 48 band values go in as expanding parameters, so they are not
# coerced into a new expression tree on every lookup (a large share of the lookup's CPU). The
# lookups here run on the session's connection: plain rows, no ORM loading machinery.
_CANDIDATES = select(PhotoHash.photo_id, PhotoHash.phash, PhotoHash.dhash).where(
    or_(*(column.in_(bindparam(column.key, expanding=True)) for column in _BAND_COLUMNS)),
    PhotoHash.photo_id != bindparam("photo_id"),
)


def _popcount(values: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 (numpy < 2 has no bitwise_count)."""
    as_bytes = np.ascontiguousarray(values).view(np.uint8).reshape(*values.shape, 8)
    return _POPCOUNT8[as_bytes].sum(axis=-1, dtype=np.int64)


def candidate_windows(
    session: Session, photo_id: str, queries: Sequence[HashPair]
) -> dict[str, list[HashPair]]:
    """The windows of candidate photos that pass hashing's per-hash thresholds against some
    query hash, grouped by photo. Vectorised: a lookup at 1,000,000 rows fetches about a
    thousand candidates, of which almost none are close."""
    ids, phash, dhash = candidate_rows(session, photo_id, queries)
    if not ids:
        return {}
    limits = hashing.MATCH_THRESHOLDS
    q_phash = np.array([q.phash for q in queries], dtype=np.uint64)
    q_dhash = np.array([q.dhash for q in queries], dtype=np.uint64)
    close = (_popcount(phash[:, None] ^ q_phash[None, :]) <= limits.phash_max) & (
        _popcount(dhash[:, None] ^ q_dhash[None, :]) <= limits.dhash_max
    )
    windows: dict[str, list[HashPair]] = defaultdict(list)
    for index in np.flatnonzero(close.any(axis=1)):
        windows[ids[index]].append(HashPair(int(phash[index]), int(dhash[index])))
    return windows


def colour_of(photo_hashes: dict | None) -> Colour | None:
    return _colour((photo_hashes or {}).get("colour"))


def _colour(value: list | None) -> Colour | None:
    return (int(value[0]), int(value[1])) if value else None


def is_copy(
    stored: Sequence[HashPair],
    queries: Sequence[HashPair],
    max_distance: int,
    stored_colour: Colour | None = None,
    query_colour: Colour | None = None,
) -> tuple[bool, int]:
    """Do the stored windows and the query hashes show the same picture? Both hashes within
    hashing's thresholds, their summed distance at most ``max_distance``, and the colour
    signatures compatible when both are known (the hashes are greyscale)."""
    matched, distance = hashing.is_match(
        PhotoHashes(tuple(stored), stored_colour), queries, query_colour=query_colour
    )
    return matched and distance <= max_distance, distance


def near_duplicates(session: Session, photo: Photo, max_distance: int) -> list[Match]:
    """Hash-level matches; the colour check needs the candidates' colours (:func:`_facts`)."""
    queries = query_pairs(photo)
    if not queries:
        return []
    matches = []
    for matched_id, windows in candidate_windows(session, photo.id, queries).items():
        matched, distance = is_copy(windows, queries, max_distance)
        if matched:
            matches.append(Match(photo.id, matched_id, distance, exact=False))
    return matches


def exact_duplicates(session: Session, photos: Sequence[Photo]) -> list[Match]:
    """Other photos uploaded from byte-identical files (one query for the claim)."""
    by_sha: dict[str, list[str]] = defaultdict(list)
    for photo in photos:
        by_sha[photo.original_sha256].append(photo.id)
    rows = flushed_connection(session).execute(
        _EXACT, {"shas": list(by_sha), "own_ids": [p.id for p in photos]}
    )
    return [
        Match(photo_id, matched_id, 0, exact=True)
        for matched_id, sha in rows
        for photo_id in by_sha[sha]
    ]


_EXACT = select(Photo.id, Photo.original_sha256).where(
    Photo.original_sha256.in_(bindparam("shas", expanding=True)),
    Photo.id.not_in(bindparam("own_ids", expanding=True)),
)


def _merge(matches: Iterable[Match]) -> list[Match]:
    """One match per (claim photo, stored photo): exact beats near, closer beats farther."""
    best: dict[tuple[str, str], Match] = {}
    for match in matches:
        key = (match.photo_id, match.matched_photo_id)
        current = best.get(key)
        if current is None or (match.exact, -match.distance) > (current.exact, -current.distance):
            best[key] = match
    return list(best.values())


@dataclass(frozen=True)
class _Facts:
    owner: str
    colour: Colour | None
    other_claims: tuple[str, ...]  # claims other than this one that the photo is attached to


def _facts(session: Session, photo_ids: set[str], claim_id: str) -> dict[str, _Facts]:
    """Owner, colour signature and other claims of each photo that still exists (erased
    photos are forgotten), in one statement."""
    if not photo_ids:
        return {}
    rows = flushed_connection(session).execute(
        _FACTS, {"ids": sorted(photo_ids), "claim_id": claim_id}
    )
    owners: dict[str, tuple[str, Colour | None]] = {}
    claims: dict[str, set[str]] = defaultdict(set)
    for photo_id, owner, colour, other_claim in rows:
        owners[photo_id] = (owner, _colour(colour))
        if other_claim is not None:
            claims[photo_id].add(other_claim)
    return {
        photo_id: _Facts(owner, colour, tuple(sorted(claims[photo_id])))
        for photo_id, (owner, colour) in owners.items()
    }


# Only the colour out of the stored hashes document: decoding each matched photo's whole
# document (23 windows and 8 queries) was most of this lookup's CPU when a photo has many
# matches. A row per (photo, other claim), or one with no claim.
_FACTS = (
    select(Photo.id, Photo.customer_id, Photo.hashes["colour"], ClaimPhoto.claim_id)
    .select_from(Photo)
    .outerjoin(
        ClaimPhoto,
        and_(ClaimPhoto.photo_id == Photo.id, ClaimPhoto.claim_id != bindparam("claim_id")),
    )
    .where(Photo.id.in_(bindparam("ids", expanding=True)), Photo.erased_at.is_(None))
)


def find_reuse(
    session: Session,
    claim_id: str,
    customer_id: str,
    photos: Sequence[Photo],
    max_distance: int,
) -> list[PhotoReuse]:
    """Every reuse of the claim's photos, strongest first."""
    if not photos:
        return []
    found = [m for photo in photos for m in near_duplicates(session, photo, max_distance)]
    # The very same upload attached to another claim counts like a copy of it.
    found += [Match(p.id, p.id, 0, exact=True) for p in photos]
    matches = _merge([*found, *exact_duplicates(session, photos)])
    facts = _facts(session, {m.matched_photo_id for m in matches}, claim_id)
    colours = {p.id: colour_of(p.hashes) for p in photos}
    reuses = []
    for match in matches:
        matched = facts.get(match.matched_photo_id)
        if matched is None:
            continue
        owner, claims = matched.owner, matched.other_claims
        if not (match.exact or hashing.colours_compatible(matched.colour, colours[match.photo_id])):
            continue
        if owner != customer_id:
            kind: ReuseKind = "other_customer"
        elif claims:
            kind = "own_other_claim"
        else:
            continue  # the customer's own re-upload, on no other claim: fine
        reuses.append(
            PhotoReuse(
                photo_id=match.photo_id,
                matched_photo_id=match.matched_photo_id,
                matched_customer_id=owner,
                kind=kind,
                distance=match.distance,
                exact=match.exact,
                claim_ids=claims,
            )
        )
    return sorted(reuses, key=lambda r: (r.kind != "other_customer", r.distance, r.photo_id))
