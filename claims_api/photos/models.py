from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from claims_api.db import Base, JsonDoc, UtcDateTime, utcnow


class Photo(Base):
    """A customer's uploaded photo: the re-encoded stored copy, its facts and its scores.

    The model scores are computed once, at upload, and kept here so that deciding a claim
    only reads them. EXIF GPS is never stored; capture time and editing software are kept
    as verification facts.
    """

    __tablename__ = "photos"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the stored copy
    original_sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(10))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    quality: Mapped[dict] = mapped_column(JsonDoc)
    exif: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    hashes: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    scores: Mapped[dict | None] = mapped_column(JsonDoc, default=None)
    model_version: Mapped[str | None] = mapped_column(String(100), default=None)
    scoring_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class PhotoHash(Base):
    """Perceptual hashes of a photo (window 0: the whole image; 1..: crop windows). band0-2 are
    the pHash and band3-5 the dHash cut into ~21-bit bands (``hashing.index_band_values``),
    each indexed: a near-duplicate shares at least one band with one of the query hashes.
    At a million photos this fetches far fewer candidate rows per lookup than 4 pHash-only
    bands (``bench/bench_duplicates.py --bands 3 --dhash-bands``)."""

    __tablename__ = "photo_hashes"
    __table_args__ = (
        Index("ix_photo_hashes_band0", "band0"),
        Index("ix_photo_hashes_band1", "band1"),
        Index("ix_photo_hashes_band2", "band2"),
        Index("ix_photo_hashes_band3", "band3"),
        Index("ix_photo_hashes_band4", "band4"),
        Index("ix_photo_hashes_band5", "band5"),
    )

    photo_id: Mapped[str] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    window: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    phash: Mapped[int] = mapped_column(BigInteger)
    dhash: Mapped[int] = mapped_column(BigInteger)
    band0: Mapped[int] = mapped_column(Integer)
    band1: Mapped[int] = mapped_column(Integer)
    band2: Mapped[int] = mapped_column(Integer)
    band3: Mapped[int] = mapped_column(Integer)
    band4: Mapped[int] = mapped_column(Integer)
    band5: Mapped[int] = mapped_column(Integer)


class PhotoView(Base):
    """Who looked at which photo, and when: photos hold personal data."""

    __tablename__ = "photo_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    photo_id: Mapped[str] = mapped_column(String(40), index=True)
    viewer_id: Mapped[str] = mapped_column(String(40), index=True)
    purpose: Mapped[str] = mapped_column(String(40), default="review")
    viewed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    with_heatmap: Mapped[bool] = mapped_column(Boolean, default=False)
