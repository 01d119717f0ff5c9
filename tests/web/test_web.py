"""The reviewer workbench through its HTML forms (TestClient): sign-in, CSRF, the queue,
decisions, photo-view logging, the heat map and the admin statistics."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from claims_api.auth.models import Reviewer
from claims_api.auth.service import create_reviewer
from claims_api.claims.models import Claim
from claims_api.compensation.models import LedgerPosting
from claims_api.db import utcnow
from claims_api.photos.models import PhotoView
from claims_api.review.models import PhotoLabel, ReviewDecision
from claims_api.review.stats import is_overturn, worked_seconds
from claims_api.rules import REASON_CODES, RULES
from claims_api.web.heatmap import heatmap_png
from claims_api.web.models import WebSession
from claims_api.web.service import yuan_to_cents
from claims_api.web.text import catalogue_keys, code_label, signal_cell
from data.synthetic import make_fruit
from tests.support.api import jpeg_bytes

PASSWORD = "correct-horse-1"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def client(client):
    """The shared TestClient, not following redirects: the tests check where they go."""
    client.follow_redirects = False
    return client


def make_reviewer(container, username: str, role: str = "reviewer") -> str:
    with container.db.session() as session:
        return create_reviewer(session, username, PASSWORD, role).id


def login(client, username: str, password: str = PASSWORD, next_url: str = "/web/queue"):
    page = client.get("/web/login")
    assert page.status_code == 200
    token = LOGIN_CSRF.search(page.text).group(1)
    return client.post(
        "/web/login",
        data={"username": username, "password": password, "csrf": token, "next": next_url},
        follow_redirects=False,
    )


def signed_in(client, container, username: str = "ana", role: str = "reviewer") -> str:
    make_reviewer(container, username, role)
    response = login(client, username)
    assert response.status_code == 303, response.text
    return csrf_of(client)


def csrf_of(client) -> str:
    return CSRF_META.search(client.get("/web/queue").text).group(1)


def manual_claim(api, order_id: str, seed: int, price: int = 300) -> str:
    customer = api.customer()
    api.put_order(order_id, unit_price_cents=price)
    photo = api.upload_fruit(customer, rotten=False, seed=seed)
    body = api.claim(customer, [photo], order_id=order_id).json()
    assert body["status"] == "in_review", body
    return body["id"]


def location(response) -> str:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    return response.headers["location"]


def test_pages_need_a_session_and_login_works(client, container):
    response = client.get("/web/queue", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/web/login?next=/web/queue")
    make_reviewer(container, "ana")

    assert login(client, "ana", "wrong-password").status_code == 401
    assert login(client, "nobody").status_code == 401
    ok = login(client, "ana")
    assert location(ok) == "/web/queue"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = client.get("/web/queue")
    assert page.status_code == 200 and "ana" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_open_redirect_after_login_is_refused(client, container):
    make_reviewer(container, "ana")
    assert location(login(client, "ana", next_url="https://evil.example/")) == "/web/queue"


def test_login_form_needs_its_csrf_token(client, container):
    make_reviewer(container, "ana")
    client.get("/web/login")
    response = client.post(
        "/web/login", data={"username": "ana", "password": PASSWORD, "csrf": "forged"}
    )
    assert response.status_code == 403
    assert "fc_session" not in response.headers.get("set-cookie", "")


def test_posts_without_the_session_csrf_token_are_rejected(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    token = signed_in(client, container)
    for url in ("/web/next", "/web/logout", f"/web/claims/{claim_id}/decision"):
        assert client.post(url, data={}).status_code == 403
        assert client.post(url, data={"csrf": token + "x"}).status_code == 403
    assert client.post(f"/web/claims/{claim_id}/heartbeat").status_code == 403
    with container.db.read_session() as session:
        assert session.get(Claim, claim_id).lease_holder is None
    # a token from another session does not work either
    other = signed_in(client, container, "bo")
    assert other != token


def test_logout_revokes_the_session_on_the_server(client, container):
    token = signed_in(client, container)
    stolen = client.cookies.get("fc_session")
    assert location(client.post("/web/logout", data={"csrf": token})) == "/web/login"
    assert client.get("/web/queue").status_code == 303
    client.cookies.set("fc_session", stolen, path="/web")  # a copied cookie is dead too
    assert client.get("/web/queue").status_code == 303
    with container.db.read_session() as session:
        row = session.scalars(select(WebSession)).one()
        assert row.revoked_at is not None and row.id != stolen  # only the hash is stored


def test_a_deactivated_reviewer_is_signed_out(client, container):
    signed_in(client, container, "ana")
    with container.db.session() as session:
        session.execute(update(Reviewer).where(Reviewer.username == "ana").values(active=False))
    assert client.get("/web/queue").status_code == 303
    client.cookies.set("fc_session", "x" * 5000, path="/web")
    assert client.get("/web/queue").status_code == 303


def test_queue_lists_claims_by_sla_with_counts_filters_and_holders(client, container, api):
    first = manual_claim(api, "ord-a", 1, price=300)
    second = manual_claim(api, "ord-b", 2, price=900)
    with container.db.session() as session:
        session.execute(
            update(Claim).where(Claim.id == second).values(sla_deadline=utcnow() - timedelta(1))
        )
    token = signed_in(client, container, "ana")
    page = client.get("/web/queue").text
    assert page.index(second) < page.index(first)
    assert 'data-count="waiting">2<' in page and 'data-count="overdue">1<' in page
    assert "data-deadline=" in page and "¥18.00" in page

    claim_page = location(client.post("/web/next", data={"csrf": token}))
    assert claim_page == f"/web/claims/{second}"
    page = client.get("/web/queue").text
    assert 'data-count="leased">1<' in page and "ana · 1" in page

    filtered = client.get("/web/queue", params={"min_amount": "10"}).text
    assert second in filtered and first not in filtered
    by_reason = client.get("/web/queue", params={"reason": "claim_window"}).text
    assert first not in by_reason and second not in by_reason
    assert client.get("/web/queue", params={"max_amount": "abc"}).status_code == 422


def test_three_decisions_through_the_forms_are_audited(client, container, api):
    ids = [manual_claim(api, f"ord-{i}", i) for i in range(3)]
    token = signed_in(client, container)
    current = location(client.post("/web/next", data={"csrf": token})).rsplit("/", 1)[1]
    assert current in ids
    page = client.get(f"/web/claims/{current}").text
    assert "model_not_confident" in page and "tiny-test-1" in page and "¥6.00" in page

    seen = {"csrf": token, "heatmap_shown": "1", "photos_shown": "p1"}
    approve = {**seen, "action": "approve", "reason_code": "spoiled_confirmed"}
    second = location(client.post(f"/web/claims/{current}/decision", data=approve))
    second_id = second.rsplit("/", 1)[1]
    assert second_id != current

    part = {**seen, "action": "part", "reason_code": "partly_spoiled", "amount": "3.00"}
    third_id = location(client.post(f"{second}/decision", data=part)).rsplit("/", 1)[1]

    no_message = {"csrf": token, "action": "reject", "reason_code": "not_spoiled", "message": ""}
    refused = client.post(f"/web/claims/{third_id}/decision", data=no_message)
    assert refused.status_code == 422 and "Tell the customer" in refused.text
    reject = {**no_message, "message": "The apples look fine in the photo."}
    done = client.post(f"/web/claims/{third_id}/decision", data=reject, follow_redirects=False)
    assert location(done) == "/web/queue?notice=done"

    with container.db.read_session() as session:
        decisions = session.scalars(select(ReviewDecision).order_by(ReviewDecision.id)).all()
        assert [d.outcome for d in decisions] == ["approve", "approve", "reject"]
        assert [d.claim_id for d in decisions] == [current, second_id, third_id]
        assert decisions[0].seen["via"] == "workbench"
        assert decisions[0].seen["heatmap_shown"] is True
        assert decisions[2].seen["heatmap_shown"] is False
        assert decisions[0].seen["model_version"] == "tiny-test-1"
        assert "model_not_confident" in decisions[0].seen["signal_codes"]
        assert decisions[0].leased_at is not None
        assert decisions[2].message == "The apples look fine in the photo."
        paid = sorted(session.scalars(select(LedgerPosting.amount_cents)).all())
        assert paid == [300, 600]
        statuses = {c.id: c.status for c in session.scalars(select(Claim))}
        assert statuses == {current: "paid", second_id: "paid", third_id: "rejected"}


def test_bad_decision_forms_are_4xx(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    token = signed_in(client, container)
    client.post("/web/next", data={"csrf": token})
    url = f"/web/claims/{claim_id}/decision"
    cases = [
        ({"action": "explode", "reason_code": "other"}, 422),
        ({"action": "part", "reason_code": "partly_spoiled", "amount": "abc"}, 422),
        ({"action": "part", "reason_code": "partly_spoiled", "amount": "1.001"}, 422),
        ({"action": "part", "reason_code": "partly_spoiled", "amount": "-3"}, 422),
        ({"action": "part", "reason_code": "partly_spoiled", "amount": "99.00"}, 422),
        ({"action": "approve", "reason_code": "not_a_reason"}, 422),
        ({"action": "reject", "reason_code": "spoiled_confirmed", "message": "x"}, 422),
    ]
    for form, status in cases:
        response = client.post(url, data={"csrf": token, **form})
        assert response.status_code == status, (form, response.status_code)
    assert client.get("/web/claims/clm_nope").status_code == 404
    assert client.post("/web/claims/clm_nope/decision", data={"csrf": token}).status_code == 404
    with container.db.read_session() as session:
        assert session.get(Claim, claim_id).status == "in_review"
        assert session.scalar(select(ReviewDecision)) is None


def test_a_reviewer_cannot_decide_a_claim_leased_by_another(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    ana = signed_in(client, container, "ana")
    assert location(client.post("/web/next", data={"csrf": ana})) == f"/web/claims/{claim_id}"
    bo = signed_in(client, container, "bo")
    page = client.get(f"/web/claims/{claim_id}")
    assert "leased by ana" in page.text and 'data-decision="approve"' not in page.text
    form = {"csrf": bo, "action": "approve", "reason_code": "spoiled_confirmed"}
    response = client.post(f"/web/claims/{claim_id}/decision", data=form)
    assert response.status_code == 409 and "do not hold the lease" in response.text
    assert client.post(f"/web/claims/{claim_id}/release", data={"csrf": bo}).status_code == 409
    # bo's "next" finds nothing free
    assert location(client.post("/web/next", data={"csrf": bo})) == "/web/queue?notice=empty"
    with container.db.read_session() as session:
        claim = session.get(Claim, claim_id)
        assert claim.status == "in_review" and session.scalar(select(ReviewDecision)) is None


def test_skip_heartbeat_and_release(client, container, api):
    first = manual_claim(api, "ord-a", 1)
    second = manual_claim(api, "ord-b", 2)
    token = signed_in(client, container)
    leased = location(client.post("/web/next", data={"csrf": token})).rsplit("/", 1)[1]
    assert leased == first
    beat = client.post(f"/web/claims/{first}/heartbeat", headers={"X-CSRF-Token": token})
    assert beat.status_code == 200 and beat.json()["lease_expires_at"]

    skipped = location(client.post(f"/web/claims/{first}/skip", data={"csrf": token}))
    assert skipped == f"/web/claims/{second}"
    with container.db.read_session() as session:
        assert session.get(Claim, first).lease_holder is None
    released = client.post(f"/web/claims/{second}/release", data={"csrf": token})
    assert released.status_code == 204
    gone = client.post(f"/web/claims/{second}/heartbeat", headers={"X-CSRF-Token": token})
    assert gone.status_code == 409
    with container.db.read_session() as session:
        assert session.get(Claim, second).lease_holder is None


def test_expired_lease_returns_to_the_queue(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    token = signed_in(client, container, "ana")
    client.post("/web/next", data={"csrf": token})
    with container.db.session() as session:
        session.execute(
            update(Claim)
            .where(Claim.id == claim_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    bo = signed_in(client, container, "bo")
    assert location(client.post("/web/next", data={"csrf": bo})) == f"/web/claims/{claim_id}"


def test_photo_views_are_logged_and_the_heat_map_is_a_png(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    with container.db.read_session() as session:
        photo_id = session.get(Claim, claim_id).photo_ids[0]
    signed_in(client, container)
    assert client.get(f"/web/claims/{claim_id}").status_code == 200

    image = client.get(f"/web/photos/{photo_id}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    heat = client.get(f"/web/photos/{photo_id}/heatmap.png")
    assert heat.status_code == 200 and heat.headers["content-type"] == "image/png"
    assert heat.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert client.get("/web/photos/pho_nope").status_code == 404
    assert client.get("/web/photos/pho_nope/heatmap.png").status_code == 404
    with container.db.read_session() as session:
        views = session.scalars(select(PhotoView).order_by(PhotoView.id)).all()
        assert [(v.photo_id, v.with_heatmap) for v in views] == [
            (photo_id, False),
            (photo_id, True),
        ]
    client.cookies.clear()
    assert client.get(f"/web/photos/{photo_id}").status_code == 401


def test_photo_labels(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    with container.db.read_session() as session:
        photo_id = session.get(Claim, claim_id).photo_ids[0]
    token = signed_in(client, container)
    url = f"/web/photos/{photo_id}/label"
    ok = client.post(url, data={"csrf": token, "condition": "fresh", "produce": "pear"})
    assert ok.status_code == 200
    assert client.post(url, data={"csrf": token, "condition": "mouldy"}).status_code == 422
    assert client.post(url, data={"csrf": token, "condition": "x' OR 1"}).status_code == 422
    missing = client.post("/web/photos/pho_x/label", data={"csrf": token, "condition": "fresh"})
    assert missing.status_code == 404
    with container.db.read_session() as session:
        label = session.scalars(select(PhotoLabel)).one()
        assert (label.condition, label.produce) == ("fresh", "pear")


def test_admin_page_shows_per_reviewer_statistics(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    token = signed_in(client, container, "ana")
    client.post("/web/next", data={"csrf": token})
    approve = {"csrf": token, "action": "approve", "reason_code": "spoiled_confirmed"}
    client.post(f"/web/claims/{claim_id}/decision", data=approve)
    assert client.get("/web/admin").status_code == 403

    signed_in(client, container, "boss", role="admin")
    page = client.get("/web/admin")
    assert page.status_code == 200
    row = re.search(r'data-reviewer="ana">(.*?)</tr>', page.text, re.S).group(1)
    # the tiny model scores a fresh fruit under its threshold; ana approved it: an overturn
    assert "100.0%" in row and "(1/1)" in row


@pytest.mark.parametrize(
    ("outcome", "p", "threshold", "expected"),
    [
        ("approve", 0.9, 0.8, False),
        ("approve", 0.5, 0.8, True),
        ("reject", 0.9, 0.8, True),
        ("reject", 0.5, 0.8, False),
        ("request_photos", 0.9, 0.8, None),
        ("approve", None, 0.8, None),
    ],
)
def test_overturn_definition(outcome, p, threshold, expected):
    assert is_overturn(outcome, p, threshold) is expected


def test_chinese_ui_from_accept_language_and_toggle(client, container):
    signed_in(client, container)
    page = client.get("/web/queue", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "人工审核队列" in page.text
    toggled = client.get("/web/lang", params={"to": "en", "back": "/web/queue"})
    assert location(toggled) == "/web/queue"
    page = client.get("/web/queue", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "Manual-review queue" in page.text
    assert catalogue_keys("en") == catalogue_keys("zh")


def test_amount_parsing_and_heatmap_rendering():
    assert yuan_to_cents("3.5") == 350 and yuan_to_cents(" ¥1,000 ") == 100_000
    assert yuan_to_cents("") is None
    png = heatmap_png([[0.0, 1.0], [0.5, 0.2]], 640, 480)
    assert png.startswith(b"\x89PNG")


def test_hostile_requests_are_4xx_never_500(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    token = signed_in(client, container)
    many = {f"f{i}": "x" for i in range(80)}
    responses = [
        client.post("/web/login", files={"file": ("a.txt", b"x" * 10, "text/plain")}),
        client.post("/web/next", data={"csrf": token, **many}),
        client.post("/web/next", content=b"\xff\xfe", headers={"content-type": "text/plain"}),
        client.post(f"/web/claims/{'x' * 5000}/decision", data={"csrf": token}),
        client.post(f"/web/claims/{claim_id}/heartbeat", headers={"X-CSRF-Token": token}),
        client.get("/web/admin", params={"days": "lots"}),
        client.get("/web/queue", params={"min_amount": "1e400"}),
        client.get("/web/queue", params={"min_amount": "NaN"}),
        client.get("/web/lang", params={"to": "xx", "back": "//evil.example"}),
    ]
    statuses = [r.status_code for r in responses]
    assert all(300 <= s < 500 for s in statuses), statuses
    assert responses[-1].headers["location"] == "/web/queue"


def test_signal_values_show_their_units():
    from claims_api.web.filters import signal_value

    assert signal_value(2.5, "claim_window") == "2.5 h"
    assert signal_value(120, "claim_window") == "120 h"
    assert signal_value(6800, "amount_over_cap") == "¥68.00"
    assert signal_value("new", "trust") == "new"
    assert signal_value(5000, "trust") == "¥50.00"
    assert signal_value(0.25, "claim_rate") == "25.0%"
    assert signal_value(3, "claim_frequency") == "3"
    assert signal_value(None, "claim_window") == "–"
    assert signal_value(True, "claim_window") == "yes"


def test_an_unknown_workbench_address_gets_the_workbench_404_page(client):
    page = client.get("/web/nope/deeper")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "No such page in the workbench." in page.text and "/web/queue" in page.text
    assert client.get("/web/static/workbench.css").status_code == 200
    assert client.get("/v1/nope").json()["error"]["code"] == "not_found"  # the API keeps JSON


def test_produce_and_issue_names_follow_the_ui_language(client, container, api):
    signed_in(client, container)
    claim = manual_claim(api, "ord-zh", seed=11)
    client.get("/web/lang?to=zh&back=/web/queue")
    page = client.get(f"/web/claims/{claim}")
    assert page.status_code == 200
    assert "苹果" in page.text and "腐烂" in page.text
    assert "苹果" in client.get("/web/queue").text


# ------------------------------------------------------------------ appeals, standing, duplicates

TAG = re.compile(r"<[^>]+>")
SCRIPT_OR_STYLE = re.compile(r"<(script|style|textarea)\b.*?</\1>", re.S)


def visible_text(html: str) -> str:
    """What a reader sees: tags (and their attributes), scripts and editable texts left out."""
    return TAG.sub(" ", SCRIPT_OR_STYLE.sub(" ", html))


def reject_and_appeal(client, container, api, token: str, claim_id: str) -> None:
    """The signed-in reviewer rejects the claim they lease; its customer appeals."""
    assert location(client.post("/web/next", data={"csrf": token})) == f"/web/claims/{claim_id}"
    reject = {
        "csrf": token,
        "action": "reject",
        "reason_code": "not_spoiled",
        "message": "The apples look firm and bright in both photos.",
    }
    assert client.post(f"/web/claims/{claim_id}/decision", data=reject).status_code == 303
    appeal = api.client.post(
        f"/v1/claims/{claim_id}/appeal",
        headers=api.customer(),
        json={"message": "The underside is mouldy; I can send another photo."},
    )
    assert appeal.status_code == 200, appeal.text


def test_an_appeal_shows_the_original_decision_beside_the_appeal(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    ana = signed_in(client, container, "ana")
    reject_and_appeal(client, container, api, ana, claim_id)
    signed_in(client, container, "bo")
    page = client.get(f"/web/claims/{claim_id}").text
    block = re.search(r'<section class="box appeal".*?</section>', page, re.S).group(0)
    original = re.search(r"data-original-decision>(.*?)data-appeal>", block, re.S).group(1)
    assert 'data-field="reviewer">ana<' in original
    assert "produce looks fine" in original and "not_spoiled" not in visible_text(original)
    assert "The apples look firm and bright in both photos." in original
    assert re.search(r'data-field="decided_at">\d{4}-\d\d-\d\d \d\d:\d\d UTC<', original)
    appeal = block.split("data-appeal>", 1)[1]
    assert "The underside is mouldy; I can send another photo." in appeal
    assert re.search(r'data-field="appealed_at">\d{4}-\d\d-\d\d \d\d:\d\d UTC<', appeal)

    client.get("/web/lang?to=zh&back=/web/queue")
    zh = client.get(f"/web/claims/{claim_id}").text
    assert "原决定" in zh and "拒绝人" in zh and "商品看起来正常" in zh and "顾客申诉" in zh


def test_a_claim_that_was_never_appealed_has_no_appeal_block(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    signed_in(client, container)
    assert 'class="box appeal"' not in client.get(f"/web/claims/{claim_id}").text


def standing_cells(page: str, field: str) -> list[str]:
    """The (now, at submission) cells of a row of the customer-standing table."""
    row = re.search(rf'<tr data-standing="{field}" class="(changed)?">(.*?)</tr>', page, re.S)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(2), re.S)
    return [visible_text(cell).strip() for cell in cells]


def test_trust_now_and_at_submission_are_both_shown_when_they_differ(client, container, api):
    waiting = manual_claim(api, "ord-a", 1)
    rejected = manual_claim(api, "ord-b", 2)  # the same customer (cust-1)
    token = signed_in(client, container, "ana")
    page = client.get(f"/web/claims/{waiting}").text
    assert 'data-standing-changed="yes"' in page  # a claim came in after this one
    assert standing_cells(page, "claims_30d") == ["1", "0"]
    assert standing_cells(page, "trust_level") == ["new", "new"]
    assert '<tr data-standing="trust_level" class="">' in page

    client.post("/web/next", data={"csrf": token})  # leases `waiting` (the older claim)
    client.post(f"/web/claims/{waiting}/skip", data={"csrf": token})  # and now `rejected`
    reject = {"csrf": token, "action": "reject", "reason_code": "not_spoiled", "message": "Fine."}
    assert client.post(f"/web/claims/{rejected}/decision", data=reject).status_code == 303

    page = client.get(f"/web/claims/{waiting}").text
    assert 'data-standing-changed="yes"' in page
    assert standing_cells(page, "trust_level") == ["reduced", "new"]  # now, at submission
    assert standing_cells(page, "confirmed") == ["0 / 1", "0 / 0"]  # confirmed / rejected
    assert '<tr data-standing="trust_level" class="changed">' in page
    assert "Changed since the claim was submitted." in page


def test_a_reused_photo_is_shown_beside_the_earlier_one_with_its_outcome(client, container, api):
    first_customer = api.customer("cust-early")
    api.put_order("ord-early", customer_id="cust-early", unit_price_cents=300)
    data = jpeg_bytes(make_fruit("apple", rotten=False, seed=5))
    earlier_photo = api.upload(first_customer, data).json()["id"]
    earlier = api.claim(first_customer, [earlier_photo], order_id="ord-early").json()
    token = signed_in(client, container, "ana")
    client.post("/web/next", data={"csrf": token})
    part = {"csrf": token, "action": "part", "reason_code": "partly_spoiled", "amount": "2.50"}
    assert client.post(f"/web/claims/{earlier['id']}/decision", data=part).status_code == 303

    second_customer = api.customer("cust-late")
    api.put_order("ord-late", customer_id="cust-late", unit_price_cents=300)
    reused = api.upload(second_customer, data).json()["id"]
    later = api.claim(second_customer, [reused], order_id="ord-late").json()
    assert later["status"] == "in_review", later

    page = client.get(f"/web/claims/{later['id']}").text
    panel = re.search(r'<section class="duplicate".*?</section>', page, re.S).group(0)
    assert f'data-duplicate="{earlier_photo}"' in panel
    assert f'src="/web/photos/{reused}?purpose=duplicate"' in panel
    assert f'src="/web/photos/{earlier_photo}?purpose=duplicate"' in panel
    assert "photo of another customer" in panel and "cust-early" in panel
    assert f'data-earlier-claim="{earlier["id"]}"' in panel
    assert "paid" in panel and "¥6.00 → <strong>¥2.50</strong>" in panel
    assert "identical file" in panel

    assert client.get(f"/web/photos/{earlier_photo}?purpose=duplicate").status_code == 200
    with container.db.read_session() as session:
        view = session.scalars(select(PhotoView).order_by(PhotoView.id.desc())).first()
        assert (view.photo_id, view.purpose) == (earlier_photo, "review_duplicate")
    # the earlier photo is another customer's: a customer's token cannot open it here
    client.cookies.clear()
    assert client.get(f"/web/photos/{earlier_photo}?purpose=duplicate").status_code == 401
    assert client.get(f"/web/photos/{earlier_photo}", headers=second_customer).status_code == 401


def test_every_reason_code_has_a_short_label_in_both_languages():
    codes = [*REASON_CODES, "trust"]
    for locale in ("en", "zh"):
        missing = [code for code in codes if not RULES[code].label.get(locale)]
        assert not missing, (locale, missing)
        for code in codes:
            text = code_label(locale, "signal", code)
            assert "_" not in text and text != code, (locale, code, text)
    assert code_label("zh", "signal", "claim_window") == "超出时限"
    assert code_label("en", "signal", "a_code_nobody_labelled") == "a code nobody labelled"


def test_the_chinese_claim_and_queue_pages_show_no_snake_case_codes(client, container, api):
    claim_id = manual_claim(api, "ord-1", 1)
    token = signed_in(client, container)
    client.get("/web/lang?to=zh&back=/web/queue")
    queue = visible_text(client.get("/web/queue").text)
    client.post("/web/next", data={"csrf": token})
    claim = visible_text(client.get(f"/web/claims/{claim_id}").text)
    assert "模型不确定" in claim and "模型不确定" in queue
    for text in (queue, claim):
        codes = re.findall(r"\b[a-z]{2,}(?:_[a-z]{2,})+\b", text)  # ids are hex: not matched
        assert not codes, sorted(set(codes))


def test_per_hour_counts_the_hours_worked_not_the_window():
    at = utcnow().replace(hour=10, minute=0, second=0, microsecond=0)
    minute = timedelta(minutes=1)
    spans = [
        (at, at + 5 * minute),  # a session from 10:00 ...
        (at + 6 * minute, at + 10 * minute),  # ... to 10:10 (a one-minute pause)
        (at + 180 * minute, at + 182 * minute),  # after a break: 13:00 to 13:02
        (at + 300 * minute, at + 300 * minute),  # a lone decision with no lease time
    ]
    assert worked_seconds(spans) == (10 + 2 + 1) * 60
    assert worked_seconds([]) == 0


def test_admin_per_hour_uses_the_session_not_the_seven_day_window(client, container, api):
    ids = [manual_claim(api, f"ord-{i}", i) for i in range(2)]
    token = signed_in(client, container, "ana")
    approve = {"csrf": token, "action": "approve", "reason_code": "spoiled_confirmed"}
    client.post("/web/next", data={"csrf": token})
    for claim_id in ids:
        client.post(f"/web/claims/{claim_id}/decision", data=approve)
    start = utcnow() - timedelta(minutes=30)
    with container.db.session() as session:  # ana took 30 minutes for the two
        for n, decision in enumerate(session.scalars(select(ReviewDecision))):
            decision.leased_at = start + timedelta(minutes=15 * n)
            decision.decided_at = start + timedelta(minutes=15 * (n + 1))
    signed_in(client, container, "boss", role="admin")
    row = re.search(r'data-reviewer="ana">(.*?)</tr>', client.get("/web/admin").text, re.S)
    hours = re.search(r"data-hours>(.*?)</td>", row.group(1)).group(1)
    per_hour = re.search(r"data-per-hour>(.*?)</td>", row.group(1)).group(1)
    assert (hours, per_hour) == ("30m 00s", "4.0")  # 2 decisions in half an hour


def test_signal_cells_speak_the_ui_language():
    assert signal_cell("zh", "produce_unknown_to_model", "tomato") == "番茄"
    assert signal_cell("zh", "produce_mismatch", ["apple", "dragonfruit"]) == "苹果, dragonfruit"
    assert signal_cell("zh", "trust", "reduced") == "降低"
    assert signal_cell("en", "trust", 5000) == "¥50.00"
    assert signal_cell("en", "claim_window", 2.5) == "2.5 h"
