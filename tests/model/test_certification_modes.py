"""The policy's certification mode, through the claim API, /readyz and ``freshclaim predict``.

``validated`` (the default, the embedded demo): the model's global threshold for every kind,
and every decision says it was uncertified. ``certified``: a kind auto-approves only at the
threshold its certificate gives; a kind without one goes to a person."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claims_api.config import Settings
from claims_api.container import build_container
from claims_api.inference.metadata import KindCertificate
from claims_api.main import create_app
from data.synthetic import make_fruit
from tests.support.api import Api
from tests.support.tiny_model import build_tiny_model, tiny_metadata

APPLE = KindCertificate(
    kind="apple",
    threshold=0.6,
    n=320,
    errors=0,
    precision_lower_bound=0.99068,
    delta=0.05,
    target_precision=0.99,
    data_fingerprint="f" * 64,
)


@pytest.fixture(scope="module")
def certified_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    metadata = tiny_metadata("tiny-certified-1").model_copy(
        update={"certificates": {"apple": APPLE}}
    )
    return build_tiny_model(tmp_path_factory.mktemp("cert") / "tiny.onnx", metadata)


def _api(tmp_path: Path, database_url: str, model: Path, mode: str):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"certification_mode": mode, "audit_share": 0}))
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        model_path=model,
        policy_file=policy,
        secret_key="test-secret-" + "x" * 32,
        background_workers=False,
    )
    return build_container(settings)


@pytest.fixture
def certified_api(tmp_path, database_url, certified_model):
    from fastapi.testclient import TestClient

    container = _api(tmp_path, database_url, certified_model, "certified")
    with TestClient(create_app(container=container)) as client:
        yield Api(client, container)
    container.db.dispose()


def _decision(api: Api, produce: str) -> tuple[dict, dict]:
    api.put_order(order_id=f"ord-{produce}", produce=produce)
    customer = api.customer()
    photo = api.upload_fruit(customer, produce=produce, rotten=True)
    claim = api.claim(customer, [photo], order_id=f"ord-{produce}")
    assert claim.status_code == 201, claim.text
    staff = api.staff_view(claim.json())
    with api.container.db.read_session() as session:
        from claims_api.claims.models import Claim

        record = session.get(Claim, claim.json()["id"]).decision
    return staff, record


def test_validated_mode_is_the_default_and_records_uncertified(api, container):
    assert container.policy.certification_mode == "validated"
    staff, record = _decision(api, "apple")
    assert staff["status"] == "paid"
    assert record["certification"] == {
        "mode": "validated",
        "kind": "apple",
        "status": "validated, uncertified",
        "threshold": 0.9,
        "certificate": None,
    }
    ready = api.client.get("/readyz").json()
    assert ready["certification_mode"] == "validated" and ready["certified_kinds"] == []


def test_certified_mode_pays_a_certified_kind_at_its_own_threshold(certified_api):
    staff, record = _decision(certified_api, "apple")
    assert staff["status"] == "paid", staff["decision"]
    cert = record["certification"]
    assert (cert["mode"], cert["status"], cert["threshold"]) == ("certified", "certified", 0.6)
    assert cert["certificate"] == APPLE.model_dump()
    ready = certified_api.client.get("/readyz").json()
    assert ready["certification_mode"] == "certified" and ready["certified_kinds"] == ["apple"]


def test_certified_mode_sends_an_uncertified_kind_to_a_person(certified_api):
    staff, record = _decision(certified_api, "banana")
    assert staff["status"] == "in_review"
    assert "kind_not_certified" in [r["code"] for r in staff["decision"]["reasons"]]
    assert record["certification"]["status"] == "not_certified"
    report = certified_api.client.get(
        f"/v1/claims/{staff['id']}/verification", headers=certified_api.reviewer()
    ).json()
    signal = next(s for s in report["signals"] if s["code"] == "kind_not_certified")
    assert signal["fired"] and signal["value"] == "banana" and signal["threshold"] == ["apple"]


def test_the_same_kind_is_paid_in_validated_mode(tmp_path, database_url, certified_model):
    """The certificate is carried but not used: validated mode judges at the global one."""
    from fastapi.testclient import TestClient

    container = _api(tmp_path, database_url, certified_model, "validated")
    with TestClient(create_app(container=container)) as client:
        staff, record = _decision(Api(client, container), "banana")
    container.db.dispose()
    assert staff["status"] == "paid"
    assert record["certification"]["status"] == "validated, uncertified"


def _predict(tmp_path: Path, model: Path, *args: str) -> list[dict]:
    from claims_api.cli import app

    photo = tmp_path / "banana.jpg"
    make_fruit("banana", rotten=True, seed=1).save(photo, quality=92)
    apple = tmp_path / "apple.jpg"
    make_fruit("apple", rotten=True, seed=1).save(apple, quality=92)
    result = CliRunner().invoke(
        app, ["predict", str(apple), str(photo), "--json", "--model", str(model), *args]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_predict_says_whether_the_kind_is_certified_and_why(tmp_path, certified_model):
    apple, banana = _predict(tmp_path, certified_model, "--mode", "certified")
    assert apple["auto_approvable"] and apple["kind_certified"]
    assert apple["certification"] == "certified" and apple["threshold"] == 0.6
    assert "certified at 0.6" in apple["why"]
    assert not banana["auto_approvable"] and not banana["kind_certified"]
    assert banana["reasons"] == ["kind_not_certified"]
    assert "kind_not_certified" in banana["why"]

    apple, banana = _predict(tmp_path, certified_model, "--mode", "validated")
    assert apple["auto_approvable"] and banana["auto_approvable"]
    assert apple["kind_certified"] and apple["certification"] == "validated, uncertified"
    assert "uncertified" in banana["why"]
