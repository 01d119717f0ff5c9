"""``freshclaim dataset export``: reviewer-labelled photos of consenting customers, split by
customer, duplicates removed, with a datasheet."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from claims_api.photos.models import Photo
from claims_api.retraining.export import Label, export_dataset, resolve, split_of
from data.synthetic import make_fruit
from tests.support.api import jpeg_bytes

SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def _label(api, reviewer, photo_id: str, condition: str, produce: str) -> None:
    response = api.client.put(
        f"/v1/review/photos/{photo_id}/label",
        json={"condition": condition, "produce": produce},
        headers=reviewer,
    )
    assert response.status_code == 204, response.text


def _consent(api, customer_id: str, training: bool) -> None:
    response = api.client.put(
        f"/v1/customers/{customer_id}/consent",
        json={"training": training},
        headers=api.shop_headers(),
    )
    assert response.status_code == 200, response.text


def _export(container, out: Path) -> tuple[dict, list[dict]]:
    with container.db.read_session() as session:
        sheet = export_dataset(
            session, container.storage, SINCE, out, container.policy.duplicate_max_distance
        )
    with open(out / "manifest.csv", newline="") as handle:
        return sheet, list(csv.DictReader(handle))


def _customers_of(container, photo_ids: list[str]) -> dict[str, str]:
    with container.db.read_session() as session:
        rows = session.execute(select(Photo.id, Photo.customer_id).where(Photo.id.in_(photo_ids)))
        return dict(rows.all())


def _upload(api, headers, produce: str, rotten: bool, seed: int) -> str:
    response = api.upload(headers, jpeg_bytes(make_fruit(produce, rotten=rotten, seed=seed)))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_export_keeps_consenting_customers_only_and_splits_by_customer(api, container, tmp_path):
    reviewer = api.reviewer()
    photos: dict[str, list[str]] = {}
    kinds = ("apple", "banana", "orange")
    for i in range(12):
        customer_id = f"cust-{i}"
        api.put_order(order_id=f"ord-{i}", customer_id=customer_id)
        headers = api.customer(customer_id)
        photos[customer_id] = []
        for j, rotten in enumerate((True, False)):
            kind = kinds[(i + j) % 3]
            photo = _upload(api, headers, kind, rotten, seed=100 * i + j)
            _label(api, reviewer, photo, "rotten" if rotten else "fresh", kind)
            photos[customer_id].append(photo)
        _consent(api, customer_id, training=i != 0)  # cust-0 never consents
    _consent(api, "cust-1", training=False)  # consent withdrawn before the export
    erased = api.client.delete("/v1/customers/cust-2/personal-data", headers=api.shop_headers())
    assert erased.status_code == 200, erased.text

    sheet, rows = _export(container, tmp_path / "export")

    exported = [r["source_path"] for r in rows]
    owners = _customers_of(container, exported)
    assert not {"cust-0", "cust-1", "cust-2"} & set(owners.values())
    assert not set(photos["cust-0"]) & set(exported)
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        splits_of.setdefault(owners[row["source_path"]], set()).add(row["split"])
        assert (tmp_path / "export" / row["image"]).is_file()
        assert row["condition"] in ("fresh", "rotten") and row["produce"] in kinds
    assert all(len(s) == 1 for s in splits_of.values())
    assert sheet["photos"] == len(rows) > 0
    assert sheet["excluded"]["no_training_consent"] == 4  # cust-0 and cust-1
    assert sheet["labelled_customers"] == 11  # the erased customer's photos are gone
    assert sheet["consenting_customers"] == 9
    assert sheet["excluded"]["erased"] == 2
    assert sum(sheet["per_class"].values()) == len(rows)
    assert sheet["per_label_source"] == {"photo_label": len(rows)}
    assert (tmp_path / "export" / "datasheet.md").read_text().startswith("# Datasheet")

    from data.manifest import read_manifest

    assert len(read_manifest(tmp_path / "export")) == len(rows)


def test_duplicates_are_exported_once(api, container, tmp_path):
    reviewer = api.reviewer()
    data = jpeg_bytes(make_fruit("apple", rotten=True, seed=7))
    ids = []
    for customer_id in ("cust-a", "cust-b"):
        api.put_order(order_id=f"ord-{customer_id}", customer_id=customer_id)
        headers = api.customer(customer_id)
        response = api.upload(headers, data)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        _label(api, reviewer, ids[-1], "rotten", "apple")
        _consent(api, customer_id, training=True)

    sheet, rows = _export(container, tmp_path / "export")

    assert [r["source_path"] for r in rows] == [ids[0]]  # the earliest copy
    assert sheet["excluded"]["duplicate"] == 1


def test_review_decisions_and_audit_verdicts_are_labels(api, container, tmp_path):
    reviewer = api.reviewer()
    api.put_order(order_id="ord-1", customer_id="cust-1")
    headers = api.customer("cust-1")
    _consent(api, "cust-1", training=True)
    audited = _upload(api, headers, "apple", True, seed=1)
    claim = api.claim(headers, [audited], order_id="ord-1").json()
    assert claim["status"] == "paid"
    assert api.client.post("/v1/review/audit/lease", headers=reviewer).status_code == 200
    verdict = api.client.post(
        f"/v1/review/audit/{claim['id']}/verdict", json={"verdict": "fresh"}, headers=reviewer
    )
    assert verdict.status_code == 200, verdict.text

    sheet, rows = _export(container, tmp_path / "export")

    assert [(r["source_path"], r["condition"], r["produce"]) for r in rows] == [
        (audited, "fresh", "apple")
    ]
    assert sheet["per_label_source"] == {"audit": 1}


def test_conflicts_resolve_photo_label_then_audit_then_review_then_latest():
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    later = t0 + timedelta(hours=1)
    labels = [
        Label("p1", "rotten", "apple", "review", later),
        Label("p1", "fresh", "apple", "audit", t0),
        Label("p2", "rotten", "apple", "audit", later),
        Label("p2", "fresh", "apple", "photo_label", t0),
        Label("p3", "fresh", "apple", "photo_label", t0),
        Label("p3", "rotten", "apple", "photo_label", later),
    ]
    chosen = resolve(labels)
    assert {k: (v.condition, v.source) for k, v in chosen.items()} == {
        "p1": ("fresh", "audit"),
        "p2": ("fresh", "photo_label"),
        "p3": ("rotten", "photo_label"),
    }


def test_customer_split_is_stable_and_roughly_80_10_10():
    splits = [split_of(f"cust-{i}", "salt") for i in range(5000)]
    assert splits == [split_of(f"cust-{i}", "salt") for i in range(5000)]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.77 < share["train"] < 0.83 and 0.08 < share["val"] < 0.12


def test_the_cli_exports_and_prints_the_datasheet(api, container, settings, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from claims_api.cli import app
    from claims_api.config import get_settings

    reviewer = api.reviewer()
    api.put_order(order_id="ord-1", customer_id="cust-1")
    photo = _upload(api, api.customer("cust-1"), "banana", True, seed=3)
    _label(api, reviewer, photo, "rotten", "banana")
    _consent(api, "cust-1", training=True)
    monkeypatch.setenv("FRESHCLAIM_HOME", str(settings.home))
    monkeypatch.setenv("FRESHCLAIM_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        out = tmp_path / "cli-export"
        result = CliRunner().invoke(
            app, ["dataset", "export", "--since", "2020-01-01", "--out", str(out)]
        )
        bad = CliRunner().invoke(app, ["dataset", "export", "--since", "soon", "--out", str(out)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["per_kind"] == {"banana": 1}
    rows = list(csv.DictReader((out / "manifest.csv").read_text().splitlines()))
    assert [r["source_path"] for r in rows] == [photo]
    assert bad.exit_code == 2 and "ISO date" in bad.output


def test_a_flipped_copy_is_a_near_duplicate(api, container, tmp_path):
    from PIL import ImageOps

    reviewer = api.reviewer()
    image = make_fruit("orange", rotten=True, seed=11)
    ids = []
    for customer_id, copy in (("cust-a", image), ("cust-b", ImageOps.mirror(image))):
        api.put_order(order_id=f"ord-{customer_id}", customer_id=customer_id)
        response = api.upload(api.customer(customer_id), jpeg_bytes(copy, quality=80))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        _label(api, reviewer, ids[-1], "rotten", "orange")
        _consent(api, customer_id, training=True)

    sheet, rows = _export(container, tmp_path / "export")

    assert [r["source_path"] for r in rows] == [ids[0]]
    assert sheet["excluded"] == {"duplicate": 1}
