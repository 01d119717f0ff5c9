"""How well the perceptual hashes find re-used photos, on the real shared photos.

    .venv/bin/python -m bench.bench_duplicates [--limit N] [--out reports/duplicates.json]

Every photo goes through the service's own path (``process_upload`` -> stored hashes). Then:

* true matches: each photo is transformed (JPEG q60, resized 50 %, cropped 10-15 %, rotated,
  flipped, brightness/colour ±10 %, and one combination), uploaded again, and looked up
  against its own stored hashes with :func:`claims_api.photos.hashing.is_match`; the band
  columns' candidate recall (does the stored row share a pHash band with a query hash) is
  reported as well, since the index only finds what shares a band;
* false matches: every photo's query hashes against every OTHER photo's stored hashes (all
  ordered pairs), split into pairs of the same produce kind and of different kinds. Pairs the
  dataset itself documents as near-duplicates (frames of one FGrade tomato series, the
  near-duplicate pairs listed in SOURCES.md) are counted separately: they are re-used photos
  in all but name and SHOULD match.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from claims_api.photos import hashing
from claims_api.photos.imaging import process_upload
from data.paths import default_dataset_dir

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = default_dataset_dir()


def _jpeg(image: Image.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float):
    w, h = image.size
    return image.crop(
        (round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom)))
    )


# name -> (image -> bytes uploaded again)
TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "jpeg_q60": lambda im: _jpeg(im, 60),
    "resize_50": lambda im: _jpeg(im.resize((im.width // 2, im.height // 2), Image.LANCZOS)),
    "crop_10_centre": lambda im: _jpeg(_crop(im, 0.05, 0.05, 0.05, 0.05)),
    "crop_10_top_left": lambda im: _jpeg(_crop(im, 0.10, 0.10, 0, 0)),
    "crop_15_right": lambda im: _jpeg(_crop(im, 0, 0, 0.15, 0)),
    "crop_15_bottom_right": lambda im: _jpeg(_crop(im, 0, 0, 0.15, 0.15)),
    "crop_12_top": lambda im: _jpeg(_crop(im, 0, 0.12, 0, 0)),
    "crop_random_4_15_a": lambda im: _jpeg(_random_crop(im)),
    "crop_random_4_15_b": lambda im: _jpeg(_random_crop(im)),
    "crop_random_4_10": lambda im: _jpeg(_random_crop(im, 0.10)),
    "rotate_90": lambda im: _jpeg(im.transpose(Image.Transpose.ROTATE_90)),
    "rotate_180": lambda im: _jpeg(im.transpose(Image.Transpose.ROTATE_180)),
    "flip": lambda im: _jpeg(ImageOps.mirror(im)),
    "brightness_+10": lambda im: _jpeg(ImageEnhance.Brightness(im).enhance(1.10)),
    "brightness_-10": lambda im: _jpeg(ImageEnhance.Brightness(im).enhance(0.90)),
    "colour_+10": lambda im: _jpeg(ImageEnhance.Color(im).enhance(1.10)),
    "colour_shift": lambda im: _jpeg(_tint(im, (1.08, 1.0, 0.92))),
    "combo_crop8_rot270_b10_q70": lambda im: _jpeg(
        ImageEnhance.Brightness(_crop(im, 0.04, 0.04, 0.04, 0.0))
        .enhance(1.1)
        .transpose(Image.Transpose.ROTATE_270),
        70,
    ),
}


_RANDOM = np.random.default_rng(20261125)


def _random_crop(image: Image.Image, most: float = 0.15) -> Image.Image:
    """Up to ``most`` off each axis, split at random between its two sides (not aligned with
    the stored windows on purpose)."""
    width_cut, height_cut = _RANDOM.uniform(0.04, most, size=2)
    left, top = _RANDOM.uniform(0, 1, size=2) * (width_cut, height_cut)
    return _crop(image, left, top, width_cut - left, height_cut - top)


def _tint(image: Image.Image, gains: tuple[float, float, float]) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32) * np.asarray(gains, dtype=np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def load_manifest(folder: Path, limit: int | None) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if limit:
        rows = rows[:: max(1, len(rows) // limit)][:limit]
    return rows


def tomato_series(row: dict[str, str]) -> str | None:
    """FGrade file names are <series letters><time step>.jpg: frames of one tomato."""
    if row["produce"] != "tomato":
        return None
    match = re.match(r"([A-Za-z]+)\d+\.jpg$", Path(row["source_path"]).name)
    return match.group(1) if match else None


def documented_pairs(folder: Path, rows: list[dict[str, str]]) -> set[frozenset[int]]:
    """Near-duplicate pairs SOURCES.md lists as kept ('near-duplicates kept first: A | B')."""
    by_source = {f"{r['source_repo']}:{r['source_path']}": i for i, r in enumerate(rows)}
    pairs: set[frozenset[int]] = set()
    sources = folder / "SOURCES.md"
    if not sources.is_file():
        return pairs
    for line in sources.read_text(encoding="utf-8").splitlines():
        if "near-duplicates kept first:" not in line:
            continue
        left, _, right = line.split("near-duplicates kept first:", 1)[1].partition(" | ")
        a, b = by_source.get(left.strip()), by_source.get(right.strip())
        if a is not None and b is not None:
            pairs.add(frozenset((a, b)))
    return pairs


def stored_arrays(hashes: list[hashing.PhotoHashes]) -> tuple[np.ndarray, np.ndarray]:
    phash = np.array([[w.phash for w in h.windows] for h in hashes], dtype=np.uint64)
    dhash = np.array([[w.dhash for w in h.windows] for h in hashes], dtype=np.uint64)
    return phash, dhash


def query_arrays(queries: list[list[hashing.HashPair]]) -> tuple[np.ndarray, np.ndarray]:
    phash = np.array([[q.phash for q in qs] for qs in queries], dtype=np.uint64)
    dhash = np.array([[q.dhash for q in qs] for qs in queries], dtype=np.uint64)
    return phash, dhash


SWEEP = tuple(range(6, 15))


def closeness(stored: hashing.PhotoHashes, query: list[hashing.HashPair]) -> int:
    """min over (window, query hash) of max(pHash distance, dHash distance): the pair matches
    under thresholds (T, T) exactly when this is <= T."""
    return min(
        max(hashing.hamming(w.phash, q.phash), hashing.hamming(w.dhash, q.dhash))
        for w in stored.windows
        for q in query
    )


def pair_closeness(
    stored: tuple[np.ndarray, np.ndarray],
    queries: tuple[np.ndarray, np.ndarray],
    chunk: int = 32,
) -> np.ndarray:
    """closeness[i, j] of photo j's query hashes against photo i's stored windows."""
    s_p, s_d = stored
    q_p, q_d = queries
    result = np.zeros((s_p.shape[0], q_p.shape[0]), dtype=np.int16)
    for start in range(0, s_p.shape[0], chunk):
        dp = np.bitwise_count(s_p[start : start + chunk, :, None, None] ^ q_p[None, None])
        dd = np.bitwise_count(s_d[start : start + chunk, :, None, None] ^ q_d[None, None])
        result[start : start + chunk] = np.maximum(dp, dd).min(axis=(1, 3))
    return result


def pair_matches(
    stored: tuple[np.ndarray, np.ndarray],
    queries: tuple[np.ndarray, np.ndarray],
    thresholds: hashing.MatchThresholds,
    chunk: int = 32,
) -> np.ndarray:
    """matched[i, j]: a query hash of photo j is within both thresholds of a stored window of
    photo i (the same rule as hashing.is_match, vectorised)."""
    s_p, s_d = stored
    q_p, q_d = queries
    n_stored, n_query = s_p.shape[0], q_p.shape[0]
    matched = np.zeros((n_stored, n_query), dtype=bool)
    for start in range(0, n_stored, chunk):
        sp = s_p[start : start + chunk, :, None, None]
        sd = s_d[start : start + chunk, :, None, None]
        dp = np.bitwise_count(sp ^ q_p[None, None, :, :])
        dd = np.bitwise_count(sd ^ q_d[None, None, :, :])
        ok = (dp <= thresholds.phash_max) & (dd <= thresholds.dhash_max)
        matched[start : start + chunk] = ok.any(axis=(1, 3))
    return matched


def shares_band(stored: hashing.PhotoHashes, queries: list[hashing.HashPair], dhash: bool) -> bool:
    stored_bands = set()
    for window in stored.windows:
        stored_bands.update(enumerate(hashing.band_values(window.phash)))
        if dhash:
            stored_bands.update(
                (i + 10, v) for i, v in enumerate(hashing.band_values(window.dhash))
            )
    for query in queries:
        if stored_bands & set(enumerate(hashing.band_values(query.phash))):
            return True
        if dhash and stored_bands & {
            (i + 10, v) for i, v in enumerate(hashing.band_values(query.dhash))
        }:
            return True
    return False


# --- indexed lookup at scale (PostgreSQL / SQLite) ---------------------------------------


@dataclass(frozen=True)
class BandLayout:
    """Which band columns the scratch table has: ``bands`` pHash bands (band0.., the
    service's layout is 4) and, with ``with_dhash``, as many dHash bands (dband0..)."""

    bands: int = 4
    with_dhash: bool = False

    @property
    def columns(self) -> list[str]:
        names = [f"band{i}" for i in range(self.bands)]
        return names + ([f"dband{i}" for i in range(self.bands)] if self.with_dhash else [])

    def row_bands(self, phash: int, dhash: int) -> list[int]:
        values = hashing.band_values(phash, self.bands)
        return values + (hashing.band_values(dhash, self.bands) if self.with_dhash else [])

    def query_sets(self, queries: list[hashing.HashPair]) -> list[tuple[str, list[int]]]:
        sets: list[set[int]] = [set() for _ in self.columns]
        for query in queries:
            for i, value in enumerate(self.row_bands(query.phash, query.dhash)):
                sets[i].add(value)
        return [(c, sorted(v)) for c, v in zip(self.columns, sets, strict=True)]


LAYOUT = BandLayout()


def random_rows(photos: int, windows: int, layout: BandLayout, seed: int = 7):
    """(photo_id, window, customer_id, phash, dhash, band0..3) for random photos, signed."""
    rng = np.random.default_rng(seed)
    for start in range(0, photos, 50_000):
        count = min(50_000, photos - start)
        top = np.iinfo(np.uint64).max
        phash = rng.integers(0, top, size=(count, windows), dtype=np.uint64, endpoint=True)
        dhash = rng.integers(0, top, size=(count, windows), dtype=np.uint64, endpoint=True)
        for i in range(count):
            photo_id = f"pho_r{start + i:09d}"
            customer = (start + i) % 100_000
            for window in range(windows):
                p, d = int(phash[i, window]), int(dhash[i, window])
                yield (
                    photo_id,
                    window,
                    f"cus_{customer}",
                    hashing.to_signed64(p),
                    hashing.to_signed64(d),
                    *layout.row_bands(p, d),
                )


def photo_rows(photo_id: str, hashes: hashing.PhotoHashes, layout: BandLayout):
    for window, pair in enumerate(hashes.windows):
        yield (
            photo_id,
            window,
            "cus_real",
            hashing.to_signed64(pair.phash),
            hashing.to_signed64(pair.dhash),
            *layout.row_bands(pair.phash, pair.dhash),
        )


def lookup(
    cursor, placeholder: str, queries: list[hashing.HashPair], table: str, layout: BandLayout
):
    """The service's lookup: rows sharing a pHash band with any query hash, then the exact
    distances in Python. Returns the photo ids that match."""
    clauses, params = [], []
    for column, values in layout.query_sets(queries):
        clauses.append(f"{column} IN ({', '.join([placeholder] * len(values))})")
        params.extend(values)
    cursor.execute(
        f"SELECT photo_id, phash, dhash FROM {table} WHERE {' OR '.join(clauses)}", params
    )
    windows: dict[str, list[hashing.HashPair]] = {}
    rows = cursor.fetchall()
    for photo_id, phash, dhash in rows:
        windows.setdefault(photo_id, []).append(
            hashing.HashPair(hashing.from_signed64(phash), hashing.from_signed64(dhash))
        )
    matched = {
        photo_id
        for photo_id, pairs in windows.items()
        if hashing.is_match(hashing.PhotoHashes(tuple(pairs)), queries)[0]
    }
    return matched, len(rows)


def lookup_sql_verified(cursor, queries: list[hashing.HashPair], table: str, layout: BandLayout):
    """PostgreSQL only: the same band probes, but the exact distances are checked in the
    query (bit_count of the XOR against each of the 8 query hashes), so only matching photos
    come back to Python."""
    clauses, params = [], []
    for column, values in layout.query_sets(queries):
        clauses.append(f"h.{column} = ANY(%s)")
        params.append(values)
    candidates = f"SELECT photo_id, phash, dhash FROM {table} h WHERE {' OR '.join(clauses)}"
    return _matches_verified_in_sql(cursor, candidates, params, queries), -1


def lookup_index_only(cursor, queries: list[hashing.HashPair], table: str, layout: BandLayout):
    """PostgreSQL only, with covering band indexes (INCLUDE photo_id, phash, dhash): one
    UNION ALL branch per band so each can be an index-only scan (no heap fetches for the
    thousands of candidates), distances checked in SQL."""
    branches, params = [], []
    for column, values in layout.query_sets(queries):
        branches.append(f"SELECT photo_id, phash, dhash FROM {table} WHERE {column} = ANY(%s)")
        params.append(values)
    candidates = " UNION ALL ".join(branches)
    return _matches_verified_in_sql(cursor, candidates, params, queries), -1


def _matches_verified_in_sql(
    cursor, candidates_sql: str, candidate_params: list, queries: list[hashing.HashPair]
) -> set[str]:
    """PostgreSQL: the photo ids among ``candidates_sql`` (rows of photo_id, phash, dhash)
    within the match thresholds of some query hash, the distances computed in SQL."""
    thresholds = hashing.MATCH_THRESHOLDS
    params = list(candidate_params)
    values_sql = ", ".join(["(%s::bigint, %s::bigint)"] * len(queries))
    for query in queries:
        params.extend([hashing.to_signed64(query.phash), hashing.to_signed64(query.dhash)])
    params.extend([thresholds.phash_max, thresholds.dhash_max])
    cursor.execute(
        f"SELECT DISTINCT c.photo_id FROM ({candidates_sql}) c "
        f"JOIN (VALUES {values_sql}) AS q(p, d) "
        "ON bit_count((c.phash # q.p)::bit(64)) <= %s "
        "AND bit_count((c.dhash # q.d)::bit(64)) <= %s",
        params,
    )
    return {row[0] for row in cursor.fetchall()}


def time_lookups(function, queries: list) -> dict:
    for _, query in queries[:20]:  # warm the caches a little, as a running service is
        function(query)
    latencies, candidates, found = [], [], 0
    for expected, query in queries:
        begun = time.perf_counter()
        matched, rows = function(query)
        latencies.append((time.perf_counter() - begun) * 1000.0)
        candidates.append(rows)
        found += expected in matched
    return {
        "lookups": len(latencies),
        "lookup_ms_p50": float(np.percentile(latencies, 50)),
        "lookup_ms_p95": float(np.percentile(latencies, 95)),
        "lookup_ms_p99": float(np.percentile(latencies, 99)),
        "lookup_ms_max": float(max(latencies)),
        "candidate_rows_median": float(np.median(candidates)),
        "true_photo_found_rate": found / len(queries),
    }


def db_benchmark(
    kind: str,
    url: str,
    photos: int,
    real: list,
    queries: list,
    covering: bool = False,
    layout: BandLayout = LAYOUT,
) -> list[dict]:
    """Load ``photos`` random photos (every window a row) plus the real ones, then time one
    lookup per query photo. ``real``: [(photo_id, PhotoHashes)], ``queries``:
    [(expected photo_id, [HashPair])]."""
    windows = 1 + len(hashing.WINDOWS)
    columns = ", ".join(['photo_id, "window", customer_id, phash, dhash', *layout.columns])
    started = time.perf_counter()
    if kind == "postgres":
        import psycopg

        schema = f"fc_bench_{os.getpid()}"
        connection = psycopg.connect(url, autocommit=True)
        cursor = connection.cursor()
        table, placeholder = f"{schema}.photo_hashes", "%s"
        cursor.execute(f"CREATE SCHEMA {schema}")
    else:
        import sqlite3
        import tempfile

        folder = tempfile.mkdtemp(prefix="fc_bench_")
        connection = sqlite3.connect(os.path.join(folder, "bench.sqlite"))
        cursor = connection.cursor()
        table, placeholder = "photo_hashes", "?"
    try:
        cursor.execute(
            f'CREATE TABLE {table} (photo_id VARCHAR(40) NOT NULL, "window" INTEGER NOT NULL, '
            "customer_id VARCHAR(100) NOT NULL, phash BIGINT NOT NULL, dhash BIGINT NOT NULL, "
            + "".join(f"{column} INTEGER NOT NULL, " for column in layout.columns)
            + 'PRIMARY KEY (photo_id, "window"))'
        )
        every_row = itertools.chain(
            random_rows(photos, windows, layout),
            (row for photo_id, hashes in real for row in photo_rows(photo_id, hashes, layout)),
        )
        if kind == "postgres":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in every_row:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * (5 + len(layout.columns)))
            cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", every_row)
            connection.commit()
        loaded = time.perf_counter()
        include = " INCLUDE (photo_id, phash, dhash)" if covering and kind == "postgres" else ""
        for column in layout.columns:
            cursor.execute(f"CREATE INDEX ix_{column} ON {table} ({column}){include}")
        if kind == "postgres":
            # VACUUM sets the visibility map, without which no scan is index-only.
            cursor.execute(f"VACUUM ANALYZE {table}" if covering else f"ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")
        if kind == "sqlite":
            connection.commit()
        indexed = time.perf_counter()
        cursor.execute(f"SELECT count(*) FROM {table}")
        total_rows = cursor.fetchone()[0]

        base = {
            "backend": kind,
            "rows": total_rows,
            "photos": photos + len(real),
            "windows_per_photo": windows,
            "load_seconds": loaded - started,
            "index_seconds": indexed - loaded,
            "covering_indexes": bool(include),
            "band_columns": layout.columns,
        }
        results = [
            {
                **base,
                "verify": "python",
                **time_lookups(lambda q: lookup(cursor, placeholder, q, table, layout), queries),
            }
        ]
        if kind == "postgres":
            results.append(
                {
                    **base,
                    "verify": "sql",
                    **time_lookups(
                        lambda q: lookup_sql_verified(cursor, q, table, layout), queries
                    ),
                }
            )
        if kind == "postgres" and include:
            results.append(
                {
                    **base,
                    "verify": "sql_index_only",
                    **time_lookups(lambda q: lookup_index_only(cursor, q, table, layout), queries),
                }
            )
        return results
    finally:
        if kind == "postgres":
            cursor.execute(f"DROP SCHEMA {schema} CASCADE")
            connection.close()
        else:
            connection.close()
            shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--limit", type=int, default=None, help="use about N photos")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "duplicates.json")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/test",
        help="also time indexed lookups in a scratch schema of this PostgreSQL (dropped after)",
    )
    parser.add_argument("--sqlite", action="store_true", help="also time lookups on SQLite")
    parser.add_argument(
        "--db-rows", type=int, default=1_000_000, help="hash rows to load (23 per photo)"
    )
    parser.add_argument("--db-queries", type=int, default=300)
    parser.add_argument("--db-only", action="store_true", help="skip the match-rate part")
    parser.add_argument(
        "--bands", type=int, default=4, help="pHash bands per row (service: 3, with --dhash-bands)"
    )
    parser.add_argument("--dhash-bands", action="store_true", help="also index dHash bands")
    parser.add_argument(
        "--covering",
        action="store_true",
        help="PostgreSQL: band indexes INCLUDE (photo_id, phash, dhash) for index-only lookups",
    )
    args = parser.parse_args()
    if not (args.dataset / "manifest.csv").is_file():
        print(f"dataset not found at {args.dataset}", file=sys.stderr)
        return 2

    if args.db_only:
        return run_db_benchmarks(args)
    started = time.perf_counter()
    rows = load_manifest(args.dataset, args.limit)
    originals, stored, queries, colours = [], [], [], []
    for row in rows:
        data = (args.dataset / row["image"]).read_bytes()
        photo = process_upload(data)
        originals.append(Image.open(io.BytesIO(data)).convert("RGB"))
        stored.append(photo.hashes)
        queries.append(hashing.query_hashes(photo.small_image))
        colours.append(hashing.colour_signature(photo.small_image))
    thresholds = hashing.MATCH_THRESHOLDS

    # --- true matches over transformed copies -------------------------------------------
    true_rates: dict[str, dict[str, float]] = {}
    distances: dict[str, list[int]] = {}
    closeness_of_copies: dict[str, list[int]] = {}
    for name, transform in TRANSFORMS.items():
        hits = hits_colour = band_p = band_pd = 0
        distances[name] = []
        closeness_of_copies[name] = []
        for original, own in zip(originals, stored, strict=True):
            copy = process_upload(transform(original))
            query = hashing.query_hashes(copy.small_image)
            matched, distance = hashing.is_match(own, query, thresholds)
            colour = hashing.colour_signature(copy.small_image)
            hits_colour += hashing.is_match(own, query, thresholds, query_colour=colour)[0]
            distances[name].append(distance)
            closeness_of_copies[name].append(closeness(own, query))
            hits += matched
            band_p += matched and shares_band(own, query, dhash=False)
            band_pd += matched and shares_band(own, query, dhash=True)
        n = len(originals)
        true_rates[name] = {
            "match_rate": hits / n,
            "match_rate_with_colour": hits_colour / n,
            "found_by_phash_bands": band_p / n,
            "found_by_phash_or_dhash_bands": band_pd / n,
            "median_distance": float(np.median(distances[name])),
        }

    # --- false matches over all pairs of different photos --------------------------------
    matched = pair_matches(stored_arrays(stored), query_arrays(queries), thresholds)
    np.fill_diagonal(matched, False)
    close = pair_closeness(stored_arrays(stored), query_arrays(queries))
    colour_ok = np.array(
        [[hashing.colours_compatible(a, b, thresholds) for b in colours] for a in colours]
    )
    kinds = [r["produce"] for r in rows]
    series = [tomato_series(r) for r in rows]
    documented = documented_pairs(args.dataset, rows)
    counts: Counter[str] = Counter()
    listed: list[dict[str, str]] = []
    n = len(rows)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            same_kind = kinds[i] == kinds[j]
            if series[i] and series[i] == series[j]:
                category = "same_tomato_series"
            elif frozenset((i, j)) in documented:
                category = "documented_near_duplicate"
            else:
                category = "same_kind" if same_kind else "different_kind"
            counts[f"{category}_pairs"] += 1
            if matched[i, j] and colour_ok[i, j]:
                counts[f"{category}_matched_with_colour"] += 1
            if matched[i, j]:
                counts[f"{category}_matched"] += 1
                if category in ("same_kind", "different_kind") and len(listed) < 300:
                    listed.append(
                        {
                            "stored": rows[i]["image"],
                            "query": rows[j]["image"],
                            "colour_agrees": bool(colour_ok[i, j]),
                        }
                    )

    def rate(category: str) -> float:
        pairs = counts[f"{category}_pairs"]
        return counts[f"{category}_matched"] / pairs if pairs else float("nan")

    false_rates = {
        category: {
            "pairs": counts[f"{category}_pairs"],
            "matched": counts[f"{category}_matched"],
            "rate": rate(category),
            "matched_with_colour": counts[f"{category}_matched_with_colour"],
            "rate_with_colour": counts[f"{category}_matched_with_colour"]
            / max(1, counts[f"{category}_pairs"]),
        }
        for category in (
            "same_kind",
            "different_kind",
            "same_tomato_series",
            "documented_near_duplicate",
        )
    }
    # Threshold sweep: match when pHash <= T and dHash <= T.
    same_kind_mask = np.equal.outer(np.array(kinds), np.array(kinds))
    not_series = ~np.equal.outer(
        np.array([s or f"_{i}" for i, s in enumerate(series)]),
        np.array([s or f"~{i}" for i, s in enumerate(series)]),
    )
    off_diagonal = ~np.eye(n, dtype=bool)
    all_copies = np.array([c for values in closeness_of_copies.values() for c in values])
    crop_copies = np.array(
        [c for name, values in closeness_of_copies.items() if "crop" in name for c in values]
    )
    sweep = []
    for threshold in SWEEP:
        hit = close <= threshold
        same = hit & same_kind_mask & not_series & off_diagonal
        different = hit & ~same_kind_mask & off_diagonal
        sweep.append(
            {
                "threshold": threshold,
                "true_match_all": float(np.mean(all_copies <= threshold)),
                "true_match_crops": float(np.mean(crop_copies <= threshold)),
                "false_same_kind": float(
                    same.sum() / max(1, (same_kind_mask & not_series & off_diagonal).sum())
                ),
                "false_different_kind": float(different.sum() / max(1, (~same_kind_mask).sum())),
            }
        )
    elapsed = time.perf_counter() - started

    print(
        f"photos: {n}   windows stored per photo: {len(stored[0].windows)}   "
        f"query hashes per photo: {len(queries[0])}   thresholds: pHash <= "
        f"{thresholds.phash_max}, dHash <= {thresholds.dhash_max}"
    )
    print(
        f"\n{'transformed copy':32s} {'match':>7s} {'+colour':>8s} {'pHash band':>11s} "
        f"{'p|d band':>9s} {'med dist':>9s}"
    )
    for name, values in true_rates.items():
        print(
            f"{name:32s} {values['match_rate']:7.3f} {values['match_rate_with_colour']:8.3f} "
            f"{values['found_by_phash_bands']:11.3f} "
            f"{values['found_by_phash_or_dhash_bands']:9.3f} {values['median_distance']:9.1f}"
        )
    overall = float(np.mean([v["match_rate"] for v in true_rates.values()]))
    overall_colour = float(np.mean([v["match_rate_with_colour"] for v in true_rates.values()]))
    print(f"{'all transforms':32s} {overall:7.3f} {overall_colour:8.3f}")
    print(
        f"\n{'pairs of different photos':32s} {'pairs':>9s} {'matched':>8s} {'rate':>10s} "
        f"{'+colour':>8s} {'rate':>10s}"
    )
    for category, values in false_rates.items():
        print(
            f"{category:32s} {values['pairs']:9d} {values['matched']:8d} {values['rate']:10.2e} "
            f"{values['matched_with_colour']:8d} {values['rate_with_colour']:10.2e}"
        )
    print(
        f"\n{'threshold T (p<=T, d<=T)':26s} {'true all':>9s} {'true crops':>11s} "
        f"{'false same kind':>16s} {'false diff kind':>16s}"
    )
    for row in sweep:
        print(
            f"{row['threshold']:26d} {row['true_match_all']:9.3f} {row['true_match_crops']:11.3f} "
            f"{row['false_same_kind']:16.2e} {row['false_different_kind']:16.2e}"
        )
    print(f"\n{elapsed:.1f} s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "photos": n,
                "windows_per_photo": len(stored[0].windows),
                "query_hashes_per_photo": len(queries[0]),
                "thresholds": {
                    "phash_max": thresholds.phash_max,
                    "dhash_max": thresholds.dhash_max,
                },
                "true_match": true_rates,
                "true_match_overall": overall,
                "true_match_overall_with_colour": overall_colour,
                "false_match": false_rates,
                "threshold_sweep": sweep,
                "unexplained_matched_pairs": listed,
                "seconds": elapsed,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    if args.postgres or args.sqlite:
        return run_db_benchmarks(args)
    return 0


def run_db_benchmarks(args: argparse.Namespace) -> int:
    """Real photos' hashes are loaded among the random ones; each query is a randomly
    transformed copy of one of them, so the lookup must find it through the index."""
    rows = load_manifest(args.dataset, args.db_queries)
    names = list(TRANSFORMS)
    real, queries = [], []
    for n, row in enumerate(rows):
        original = Image.open(args.dataset / row["image"]).convert("RGB")
        photo_id = f"pho_real{n:05d}"
        real.append((photo_id, process_upload(original_bytes(original)).hashes))
        copy = process_upload(TRANSFORMS[names[n % len(names)]](original))
        queries.append((photo_id, hashing.query_hashes(copy.small_image)))
    windows = 1 + len(hashing.WINDOWS)
    photos = max(0, args.db_rows // windows - len(real))
    results = []
    layout = BandLayout(args.bands, args.dhash_bands)
    if args.postgres:
        results += db_benchmark(
            "postgres", args.postgres, photos, real, queries, args.covering, layout
        )
    if args.sqlite:
        results += db_benchmark("sqlite", "", photos, real, queries, layout=layout)
    print(
        f"\n{'backend/verify':16s} {'rows':>10s} {'photos':>8s} {'load s':>7s} {'index s':>8s} "
        f"{'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} {'max ms':>7s} {'cand.':>6s} {'found':>6s}"
    )
    for r in results:
        label = f"{r['backend']}/{r['verify']}"
        print(
            f"{label:16s} {r['rows']:10d} {r['photos']:8d} {r['load_seconds']:7.1f} "
            f"{r['index_seconds']:8.1f} {r['lookup_ms_p50']:7.2f} {r['lookup_ms_p95']:7.2f} "
            f"{r['lookup_ms_p99']:7.2f} {r['lookup_ms_max']:7.2f} "
            f"{r['candidate_rows_median']:6.0f} {r['true_photo_found_rate']:6.3f}"
        )
    out = args.out.with_name(args.out.stem + "_db.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"load_average": os.getloadavg(), "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


def original_bytes(image: Image.Image) -> bytes:
    return _jpeg(image, 95)


if __name__ == "__main__":
    raise SystemExit(main())
