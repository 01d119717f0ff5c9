"""The shared consumer helper: each registered consumer applies an event at most once, in the
transaction of its effects, and only the event types it asked for."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from claims_api.events import service as events
from claims_api.events.consumers import Consumer, apply_once
from claims_api.events.models import ConsumedEvent, OutboxEvent
from claims_api.events.registry import registered_consumers
from claims_api.profiles import service as profiles


def _event(container, event_type: str = "claim.paid"):
    with container.db.session() as session:
        return events.emit(session, event_type, "claim", "clm_1", {"claim_id": "clm_1"})


def test_a_consumer_applies_an_event_once_and_only_the_types_it_wants(container):
    seen: list[tuple[str, str]] = []
    claims = Consumer(
        "claims-log", lambda s, e: seen.append(("claims", e.event_type)), ("claim.*",)
    )
    everything = Consumer("all-log", lambda s, e: seen.append(("all", e.event_type)))
    paid, erased = _event(container), _event(container, "customer.erased")

    with container.db.session() as session:
        for event in (paid, erased, paid):  # the second ``paid`` is a redelivery
            for consumer in (claims, everything):
                apply_once(session, consumer, event)

    assert seen == [("claims", "claim.paid"), ("all", "claim.paid"), ("all", "customer.erased")]
    with container.db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(ConsumedEvent)) == 3


def test_a_failing_handler_takes_its_consumed_mark_back(container):
    def broken(session, event):
        raise RuntimeError("no")

    event = _event(container)
    with pytest.raises(RuntimeError), container.db.session() as session:
        apply_once(session, Consumer("broken", broken), event)
    with container.db.session() as session:  # the retry is applied, not skipped
        assert apply_once(session, Consumer("broken", lambda s, e: None), event)


def test_the_registry_lists_the_profiles_consumer():
    assert [c.name for c in registered_consumers()] == ["profiles", "quality"]
    assert registered_consumers()[0] is profiles.CONSUMER


def test_the_event_catalogue_in_docs_is_generated_from_the_models():
    from claims_api import docgen
    from claims_api.events.catalogue import render_markdown
    from tests.support.paths import REPO

    events_md = REPO / "docs" / "events.md"
    assert render_markdown() in events_md.read_text()
    stale = [o.path.name for o in docgen.run(check=True) if o.changed]
    assert "events.md" not in stale, "regenerate it: freshclaim docs"


def test_every_emitted_claim_event_matches_its_catalogue_schema(api, container):
    from claims_api.events.catalogue import EVENT_TYPES, EventEnvelope
    from claims_api.events.service import event_document

    api.put_order()
    customer = api.customer()
    api.claim(customer, [api.upload_fruit(customer)])
    models = {t.name: t.model for t in EVENT_TYPES}
    with container.db.read_session() as session:
        emitted = list(session.scalars(select(OutboxEvent)))
    assert [e.event_type for e in emitted] == [
        "order.delivered",
        "claim.submitted",
        "claim.approved",
        "claim.paid",
    ]
    for event in emitted:
        document = EventEnvelope.model_validate(event_document(event))
        models[document.type].model_validate(document.data)
