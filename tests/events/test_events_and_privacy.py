"""The outbox relay feeds profiles, tags and quality alerts; consent and erasure. (Webhooks:
test_webhooks.py.)"""

from __future__ import annotations

from sqlalchemy import func, select

from claims_api.events.consumers import Consumer
from claims_api.events.models import OutboxEvent
from claims_api.events.relay import OutboxRelay
from claims_api.photos.models import Photo, PhotoHash
from claims_api.profiles import service as profiles


def _relay(container) -> OutboxRelay:
    return OutboxRelay(container.db, [profiles.CONSUMER])


def test_relay_delivers_small_batches_each_in_its_own_transaction(api, container) -> None:
    api.put_order()
    customer = api.customer()
    api.claim(customer, [api.upload_fruit(customer)])  # submitted, approved, paid: 3 events
    api.put_order("ord-2")
    api.claim(customer, [api.upload_fruit(customer, seed=1)], order_id="ord-2")
    with container.db.read_session() as session:
        pending = session.scalar(select(func.count()).select_from(OutboxEvent))
    assert pending >= 3
    commits = []
    relay = OutboxRelay(container.db, [profiles.CONSUMER], batch_size=1, max_batches=2)
    original = relay._deliver_batch

    def counted():
        result = original()
        commits.append(result)
        return result

    relay._deliver_batch = counted
    assert relay.run_once() == 2 and commits == [(1, 1), (1, 1)]  # stops at max_batches
    delivered = 2
    while published := relay.run_once():
        delivered += published
    assert delivered == pending and all(fetched <= 1 for _, fetched in commits)


def test_relay_applies_each_event_once_to_the_consumers(api, container):
    api.put_order()
    customer = api.customer()
    api.claim(customer, [api.upload_fruit(customer)])
    relay = _relay(container)

    assert relay.run_once() == 4  # order.delivered, then the claim's three
    assert relay.run_once() == 0
    with container.db.session() as session:  # a redelivery, as after a crash, changes nothing
        for event in session.scalars(select(OutboxEvent)):
            event.published_at = None
    assert relay.run_once() == 4

    profile = api.client.get("/v1/customers/cust-1/profile", headers=api.shop_headers()).json()
    assert profile["claims_submitted"] == 1 and profile["claims_paid"] == 1
    assert profile["compensation_cents"] == 600
    assert "care_campaign" in profile["tags"]


def test_a_consumer_failing_on_one_event_delays_only_that_event(api, container):
    api.put_order()
    customer = api.customer()
    api.claim(customer, [api.upload_fruit(customer)])  # approved + paid: 2 events
    with container.db.read_session() as session:
        paid = select(OutboxEvent.event_id).where(OutboxEvent.event_type == "claim.paid")
        bad = session.scalar(paid)
    calls = []

    def picky(session, event):
        calls.append(event.event_type)
        if event.event_id == bad:
            raise RuntimeError("cannot take this one")
        if profiles.CONSUMER.wants(event.event_type):
            profiles.consume(session, event)

    relay = OutboxRelay(container.db, [Consumer("picky", picky)])
    # the batch's consumer work is taken back, then redone one event at a time
    assert relay.run_once() == 3
    assert calls == ["order.delivered", "claim.submitted", "claim.approved", "claim.paid"] * 2
    with container.db.read_session() as session:
        events = {e.event_type: e for e in session.scalars(select(OutboxEvent))}
        assert events["claim.approved"].published_at is not None
        assert events["claim.paid"].published_at is None and events["claim.paid"].attempts == 1
        assert "cannot take this one" in events["claim.paid"].last_error
    profile = api.client.get("/v1/customers/cust-1/profile", headers=api.shop_headers()).json()
    assert profile["claims_submitted"] == 1 and profile["claims_paid"] == 0  # counted once


def test_rejected_claim_blocks_koc_and_many_claims_on_one_sku_raise_an_alert(api, container):
    customer = api.customer()
    for i in range(profiles.SKU_ALERT_CLAIMS):
        api.put_order(f"ord-{i}", customer_id="cust-1")
        api.claim(customer, [api.upload_fruit(customer, rotten=False, seed=i)], order_id=f"ord-{i}")
    reviewer = api.reviewer()
    claim_id = api.client.post("/v1/review/lease", headers=reviewer).json()["claim_id"]
    api.client.post(
        f"/v1/review/claims/{claim_id}/decision",
        headers=reviewer,
        json={"outcome": "reject", "reason_code": "not_spoiled", "message": "Looks fine."},
    )
    relay = _relay(container)
    while relay.run_once():
        pass

    profile = api.client.get("/v1/customers/cust-1/profile", headers=api.shop_headers()).json()
    assert profile["claims_rejected"] == 1 and "koc_ineligible" in profile["tags"]
    alerts = api.client.get("/v1/quality/alerts", headers=api.shop_headers()).json()
    assert len(alerts) == 1 and alerts[0]["sku"] == "SKU-apple"
    assert alerts[0]["claims_in_window"] == profiles.SKU_ALERT_CLAIMS


def test_consent_and_erasure(api, container):
    api.put_order()
    customer = api.customer()
    photo_id = api.upload_fruit(customer)
    api.claim(customer, [photo_id], note="my phone number is 138…")
    shop = api.shop_headers()

    consent = api.client.put("/v1/customers/cust-1/consent", headers=shop, json={"training": True})
    assert consent.status_code == 200 and consent.json()["training_consent"] is True
    with container.db.read_session() as session:
        key = session.get(Photo, photo_id).storage_key
    assert container.storage.exists(key)

    erased = api.client.delete("/v1/customers/cust-1/personal-data", headers=shop)

    assert erased.status_code == 200
    assert erased.json() == {"photos_erased": 1, "files_deleted": 1, "claims_redacted": 1}
    assert not container.storage.exists(key)
    with container.db.read_session() as session:
        photo = session.get(Photo, photo_id)
        assert photo.erased_at is not None and photo.exif == {} and photo.hashes == {}
        assert session.scalar(select(func.count()).select_from(PhotoHash)) == 0
    assert api.client.get(f"/v1/photos/{photo_id}", headers=customer).status_code == 404
    assert api.client.get("/v1/customers/cust-1/profile", headers=shop).status_code == 404
    assert api.client.get("/v1/customers/cust-1/profile", headers=customer).status_code == 403


def test_reviewer_photo_views_are_logged(api, container):
    from claims_api.photos.models import PhotoView

    customer = api.customer()
    photo_id = api.upload_fruit(customer)
    reviewer = api.reviewer()
    assert api.client.get(f"/v1/photos/{photo_id}/content", headers=customer).status_code == 200
    response = api.client.get(f"/v1/photos/{photo_id}/content", headers=reviewer)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    with container.db.read_session() as session:
        views = session.scalars(select(PhotoView)).all()
    assert (
        len(views) == 1 and views[0].photo_id == photo_id and views[0].viewer_id.startswith("rev_")
    )
