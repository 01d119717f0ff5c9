"""Accepting a photo: validate and decode it (outside any transaction), score it once with
the model, store the re-encoded copy, then record it in one short transaction."""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from claims_api.auth.principal import Principal
from claims_api.container import Container
from claims_api.db import new_id, utcnow
from claims_api.inference.model import PhotoScores
from claims_api.inference.service import ScoringUnavailable
from claims_api.observability import observe_photo
from claims_api.orders.errors import OrderNotFound, UnknownLine
from claims_api.orders.models import Order, OrderLine
from claims_api.orders.service import ensure_customer
from claims_api.photos import hashing
from claims_api.photos.errors import PHOTO_REJECTIONS, PhotoNotFound
from claims_api.photos.imaging import ImageLimits, PhotoRejected, ProcessedPhoto, process_upload
from claims_api.photos.messages import CATALOGUE, DEFAULT_LOCALE, message
from claims_api.photos.models import Photo, PhotoHash, PhotoView
from claims_api.photos.schemas import PhotoOut, Problem, QualityOut
from claims_api.rules.gate import RETAKE_CODES, photo_gate
from claims_api.rules.signals import customer_text

log = logging.getLogger(__name__)


def _text(code: str, locale: str, fallback: str) -> str:
    return message(code, locale) if code in CATALOGUE[DEFAULT_LOCALE] else fallback


@dataclass(frozen=True)
class UploadContext:
    """Optional: the order line the photo is for, so a wrong item is caught at once."""

    order_id: str | None = None
    line_id: str | None = None


def limits_for(container: Container) -> ImageLimits:
    s = container.settings
    return ImageLimits(
        max_bytes=s.max_upload_bytes,
        max_pixels=s.max_image_pixels,
        stored_max_side=s.stored_photo_max_side,
    )


def _score(container: Container, small_image: Image.Image) -> tuple[PhotoScores | None, str | None]:
    """A failing or slow model never loses the customer's photo: it is kept unscored."""
    try:
        budget = container.settings.decision_budget_seconds
        return container.models.score(small_image, budget), None
    except ScoringUnavailable as exc:
        return None, str(exc)


def _problems(
    processed: ProcessedPhoto, scores: PhotoScores | None, ordered: str | None, locale: str
) -> list[Problem]:
    """The quality check's problems, then what the photo gate says a new photo could fix."""
    quality = [p.code for p in processed.quality.problems]
    gate = photo_gate(scores, ordered, quality)
    problems = [
        Problem(code=p.code, message=_text(p.code, locale, p.message))
        for p in processed.quality.problems
    ]
    return problems + [
        Problem(code=RETAKE_CODES[code], message=customer_text(code, locale) or "")
        for code in gate.codes
        if code in RETAKE_CODES
    ]


def _ordered_produce(session: Session, customer: Principal, ctx: UploadContext) -> str | None:
    if not (ctx.order_id and ctx.line_id):
        return None
    order = session.get(Order, ctx.order_id)
    if order is None or order.customer_id != customer.id:
        raise OrderNotFound()
    line = session.get(OrderLine, (ctx.order_id, ctx.line_id))
    if line is None:
        raise UnknownLine(f"Order {ctx.order_id} has no line {ctx.line_id!r}.")
    return line.produce


class FairSemaphore:
    """A bounded semaphore that serves waiters in arrival order. ``threading.Semaphore``
    lets a newly arriving thread take a slot just freed for a woken waiter, so under load an
    upload could wait out several decodes that arrived after it (a long latency tail); here
    ``release`` hands the slot straight to the oldest waiter."""

    def __init__(self, value: int) -> None:
        self._limit = self._free = value
        self._lock = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            if not blocking:
                return False
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=-1 if timeout is None else timeout):
            return True  # a release handed its slot to this thread
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return False
        return True  # handed over just as the wait timed out

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()
            elif self._free < self._limit:
                self._free += 1
            else:
                raise ValueError("semaphore released too many times")

    def __enter__(self) -> FairSemaphore:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@lru_cache
def _slots(count: int) -> FairSemaphore:
    return FairSemaphore(count)


def processing_slots(container: Container) -> FairSemaphore:
    """How many uploads decode and score at once in this process: the work is CPU-bound, so
    more than one per core only adds memory (each holds a decoded multi-megapixel image) and
    stretches every request's latency; the others wait their turn with only their bytes."""
    return _slots(container.settings.photo_concurrency or os.cpu_count() or 1)


def upload_photo(
    container: Container, customer: Principal, data: bytes, ctx: UploadContext, locale: str = "en"
) -> PhotoOut:
    with processing_slots(container):
        try:
            # scored while the helper thread encodes the stored copy
            processed = process_upload(
                data, limits_for(container), alongside=lambda small: _score(container, small)
            )
        except PhotoRejected as exc:
            raise PHOTO_REJECTIONS[exc.code](_text(exc.code, locale, exc.message)) from exc
        scores, scoring_error = processed.alongside_result
    storage_key = f"{processed.stored_sha256}.jpg"
    container.storage.put(storage_key, processed.stored_bytes, "image/jpeg")

    with container.db.session() as session:
        ordered = _ordered_produce(session, customer, ctx)
        ensure_customer(session, customer.id)
        problems = _problems(processed, scores, ordered, locale)
        photo = Photo(
            id=new_id("pho"),
            customer_id=customer.id,
            storage_key=storage_key,
            sha256=processed.stored_sha256,
            original_sha256=processed.original_sha256,
            format=processed.format,
            width=processed.width,
            height=processed.height,
            byte_size=len(data),
            quality={
                "ok": not problems,
                "problems": [p.model_dump() for p in problems],
                "metrics": processed.quality.metrics,
            },
            exif=processed.exif.to_dict(),
            hashes=stored_hashes(processed),
            scores=scores.to_dict() if scores else None,
            model_version=scores.model_version if scores else None,
            scoring_error=scoring_error,
            created_at=utcnow(),
        )
        session.add(photo)
        session.flush()
        # 23 rows as one bulk insert: no ORM objects to track for rows this request never reads
        session.execute(insert(PhotoHash), hash_rows(photo, processed.hashes))
        out = photo_out(photo)
    observe_photo(not problems, processed.timings_ms, processed.cpu_ms)  # once committed
    return out


def stored_hashes(processed: ProcessedPhoto) -> dict:
    """The stored windows plus the photo's 8 rotation/flip query hashes, kept so a claim can
    look the photo up later without decoding it again."""
    queries = processed.query_hashes
    return {
        **processed.hashes.to_dict(),
        "queries": [[q.phash_hex, q.dhash_hex] for q in queries],
    }


def hash_rows(photo: Photo, hashes: hashing.PhotoHashes) -> list[dict]:
    """The ``photo_hashes`` rows of a photo: one per window, with its index bands."""
    rows = []
    for window, pair in enumerate(hashes.windows):
        bands = hashing.index_band_values(pair)
        rows.append(
            {
                "photo_id": photo.id,
                "window": window,
                "customer_id": photo.customer_id,
                "phash": hashing.to_signed64(pair.phash),
                "dhash": hashing.to_signed64(pair.dhash),
                **{f"band{i}": value for i, value in enumerate(bands)},
            }
        )
    return rows


def photo_out(photo: Photo) -> PhotoOut:
    quality = photo.quality
    return PhotoOut(
        id=photo.id,
        sha256=photo.sha256,
        width=photo.width,
        height=photo.height,
        format=photo.format,
        quality=QualityOut(ok=quality["ok"], problems=[Problem(**p) for p in quality["problems"]]),
        created_at=photo.created_at,
    )


def get_visible_photo(session: Session, viewer: Principal, photo_id: str) -> Photo:
    photo = session.scalar(select(Photo).where(Photo.id == photo_id, Photo.erased_at.is_(None)))
    if photo is None or (viewer.kind == "customer" and photo.customer_id != viewer.id):
        raise PhotoNotFound()
    if viewer.kind not in ("customer", "reviewer", "admin"):
        raise PhotoNotFound()
    return photo


def log_view(
    session: Session, viewer: Principal, photo: Photo, purpose: str, with_heatmap: bool = False
) -> None:
    if viewer.kind == "customer":
        return
    session.add(
        PhotoView(
            photo_id=photo.id,
            viewer_id=viewer.id,
            purpose=purpose,
            with_heatmap=with_heatmap,
            viewed_at=utcnow(),
        )
    )
