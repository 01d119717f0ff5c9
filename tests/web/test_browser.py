"""The workbench in a real browser: Playwright drives Debian's headless Chromium against a
uvicorn server started here (SQLite; these tests do not run on the PostgreSQL parameter).

Also writes the screenshots the README links to (``docs/screenshots/``)."""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image, ImageFilter
from sqlalchemy import select, update

from claims_api.auth.service import create_reviewer
from claims_api.claims.models import Claim
from claims_api.config import Settings
from claims_api.container import Container, build_container
from claims_api.db import utcnow
from claims_api.main import create_app
from claims_api.migrate import upgrade
from claims_api.photos.models import PhotoView
from claims_api.review.models import ReviewDecision
from data.synthetic import make_fruit
from tests.conftest import REPO, dataset_dir
from tests.support.api import Api, jpeg_bytes

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one Chromium

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = REPO / "docs" / "screenshots"
SIZES = [(1366, 768), (1920, 1080)]
PASSWORD = "correct-horse-1"
MAX_SCREENSHOT_BYTES = 300 * 1024


@dataclass
class Live:
    url: str
    container: Container
    api: Api

    def reviewer(self, username: str, role: str = "reviewer") -> str:
        with self.container.db.session() as session:
            return create_reviewer(session, username, PASSWORD, role).id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); no browser is downloaded")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def live(tmp_path: Path, tiny_model_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path / 'freshclaim.db'}"
    upgrade(url)
    settings = Settings(
        home=tmp_path / "home",
        database_url=url,
        model_path=tiny_model_path,
        secret_key="browser-test-secret-" + "y" * 32,
        background_workers=False,
    )
    container = build_container(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(container=container), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        yield Live(base, container, Api(client, container))
    server.should_exit = True
    thread.join(timeout=10)
    container.db.dispose()
    crashes = [r for r in caplog.records if r.name.startswith("uvicorn") and r.exc_info]
    assert not crashes, [caplog.text[-3000:]]  # the server never answered with a 500


def manual_claims(live: Live, count: int, prefix: str = "ord") -> list[str]:
    ids = []
    for i in range(count):
        customer = live.api.customer(f"cust-{prefix}-{i}")
        order_id = f"{prefix}-{i}"
        live.api.put_order(order_id, customer_id=f"cust-{prefix}-{i}", unit_price_cents=300 + i)
        photo = live.api.upload_fruit(customer, rotten=False, seed=i + 1)
        body = live.api.claim(customer, [photo], order_id=order_id).json()
        assert body["status"] == "in_review", body
        ids.append(body["id"])
    return ids


def sign_in(context, live: Live, username: str):
    """Signs in with the keyboard alone: the username field has the focus."""
    page = context.new_page()
    page.goto(f"{live.url}/web/queue")
    page.wait_for_url("**/web/login**")
    # the field has autofocus; a page opened in the background may not have honoured it yet
    page.locator("input[name=username]").focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/web/queue"), (page.url, page.inner_text("main")[:300])
    return page


def claim_id_of(page) -> str:
    return page.url.rsplit("/", 1)[1]


def press_and_wait(page, key: str) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)


def test_three_claims_with_the_keyboard_alone(browser, live):
    claims = manual_claims(live, 3)
    live.reviewer("ana")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = sign_in(context, live, "ana")
    assert page.locator("table.queue tbody tr").count() == 3

    press_and_wait(page, "n")
    first = claim_id_of(page)
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("?")
    page.keyboard.press("h")  # heat map on: recorded with the decision
    page.locator("img.heat").first.wait_for(state="visible")
    press_and_wait(page, "a")

    second = claim_id_of(page)
    page.keyboard.press("p")
    assert page.evaluate("document.activeElement.id") == "part-amount"
    page.keyboard.type("2.50")
    press_and_wait(page, "Enter")

    third = claim_id_of(page)
    page.keyboard.press("r")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+a")
    page.keyboard.type("The apples in the photo look fresh.")
    press_and_wait(page, "Control+Enter")
    assert "/web/queue" in page.url
    assert {first, second, third} == set(claims)

    with live.container.db.read_session() as session:
        decisions = session.scalars(select(ReviewDecision).order_by(ReviewDecision.id)).all()
        assert [(d.claim_id, d.outcome) for d in decisions] == [
            (first, "approve"),
            (second, "approve"),
            (third, "reject"),
        ]
        assert decisions[1].amount_cents == 250
        assert decisions[2].message == "The apples in the photo look fresh."
        assert decisions[0].seen["heatmap_shown"] is True
        assert decisions[1].seen["heatmap_shown"] is False
        assert decisions[0].seen["photos_loaded"] == decisions[0].seen["photo_ids"]
        statuses = {c.id: c.status for c in session.scalars(select(Claim))}
        assert statuses == {first: "paid", second: "paid", third: "rejected"}
    context.close()


def test_two_reviewers_leasing_at_once_get_different_claims(browser, live):
    manual_claims(live, 2)
    live.reviewer("ana")
    live.reviewer("bo")
    contexts = [browser.new_context() for _ in range(2)]
    pages = [sign_in(ctx, live, name) for ctx, name in zip(contexts, ("ana", "bo"), strict=True)]
    for page in pages:  # both keystrokes go out before either page has navigated
        page.keyboard.press("n")
    for page in pages:
        page.wait_for_url("**/web/claims/**")
    ids = [claim_id_of(page) for page in pages]
    assert ids[0] != ids[1]
    with live.container.db.read_session() as session:
        holders = {c.id: c.lease_holder for c in session.scalars(select(Claim))}
    assert len(set(holders.values())) == 2 and None not in holders.values()
    for context in contexts:
        context.close()


def test_a_reviewer_cannot_decide_a_claim_leased_by_another(browser, live):
    [claim_id] = manual_claims(live, 1)
    ana_id = live.reviewer("ana")
    live.reviewer("bo")
    ana_ctx, bo_ctx = browser.new_context(), browser.new_context()
    ana = sign_in(ana_ctx, live, "ana")
    press_and_wait(ana, "n")
    assert claim_id_of(ana) == claim_id

    bo = sign_in(bo_ctx, live, "bo")
    bo.goto(f"{live.url}/web/claims/{claim_id}")
    assert "leased by ana" in bo.locator(".lease.other").inner_text()
    assert bo.locator('form[data-decision="approve"]').count() == 0
    bo.keyboard.press("a")  # nothing to press: no navigation, no decision
    token = bo.locator('meta[name="csrf-token"]').get_attribute("content")
    forged = bo.request.post(
        f"{live.url}/web/claims/{claim_id}/decision",
        form={"csrf": token, "action": "approve", "reason_code": "spoiled_confirmed"},
    )
    assert forged.status == 409
    with live.container.db.read_session() as session:
        claim = session.get(Claim, claim_id)
        assert (claim.status, claim.lease_holder) == ("in_review", ana_id)
        assert session.scalar(select(ReviewDecision)) is None

    # going back to the queue gives the lease back before the queue page is drawn
    ana.keyboard.press("q")
    ana.wait_for_url("**/web/queue")
    with live.container.db.read_session() as session:
        assert session.get(Claim, claim_id).lease_holder is None
    assert ana.locator("span.chip.lease").count() == 0  # no row shows a lease
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with live.container.db.read_session() as session:
            if session.get(Claim, claim_id).lease_holder is None:
                break
        time.sleep(0.1)
    else:
        pytest.fail("the lease was not released when the page was left")
    ana_ctx.close()
    bo_ctx.close()


def test_the_open_page_keeps_its_lease_alive(browser, live):
    [claim_id] = manual_claims(live, 1)
    live.reviewer("ana")
    context = browser.new_context()
    context.clock.install()
    page = sign_in(context, live, "ana")
    press_and_wait(page, "n")
    with live.container.db.read_session() as session:
        first_expiry = session.get(Claim, claim_id).lease_expires_at
    time.sleep(1.1)  # the server's clock moves on; the page's timer is driven below
    with page.expect_response("**/heartbeat") as beat:
        page.clock.run_for(31_000)
    assert beat.value.status == 200
    with live.container.db.read_session() as session:
        assert session.get(Claim, claim_id).lease_expires_at > first_expiry
    context.close()


# ------------------------------------------------------------------ screenshots


def _real_photos() -> dict[str, list[Path]]:
    """Two real photos per produce kind (a fresh one first, then a rotten one)."""
    manifest = dataset_dir() / "manifest.csv"
    if not manifest.exists():
        pytest.skip(f"the produce dataset is absent ({manifest}); screenshots use real photos")
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked: dict[str, list[Path]] = {}
    for produce in ["apple", "tomato", "banana", "strawberry", "grape", "guava"]:
        for condition in ("fresh", "rotten"):
            row = next(
                (r for r in rows if r["produce"] == produce and r["condition"] == condition),
                None,
            )
            if row is not None:
                picked.setdefault(produce, []).append(dataset_dir() / row["image"])
    return picked


def _save_png(data: bytes, name: str) -> Path:
    """A palette PNG keeps a screenshot small enough to commit (< 300 KB): fewer colours
    until it fits (noisy photos need fewer)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    path = SCREENSHOTS / name
    for colors in (192, 128, 64, 32):
        small = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        buffer = io.BytesIO()
        small.save(buffer, "PNG", optimize=True)
        if buffer.tell() < MAX_SCREENSHOT_BYTES:
            break
    path.write_bytes(buffer.getvalue())
    assert path.stat().st_size < MAX_SCREENSHOT_BYTES, (name, path.stat().st_size)
    return path


def _screenshot_claims(live: Live) -> list[str]:
    ids = []
    for i, (produce, paths) in enumerate(_real_photos().items()):
        customer_id = f"c-{100 + i}"
        customer = live.api.customer(customer_id)
        order_id = f"A{1001 + i}"
        live.api.put_order(
            order_id,
            customer_id=customer_id,
            produce=produce,
            quantity=4 + i,
            unit_price_cents=250 + 130 * i,
            delivered_hours_ago=3 + i,
            pickup_point_id=f"PP-{7 + i % 3:02d}",
        )
        chosen = paths if i == 1 else paths[:1]  # the claim ana works shows two photos
        photos = [live.api.upload(customer, p.read_bytes()).json()["id"] for p in chosen]
        body = live.api.claim(customer, photos, order_id=order_id, quantity=1 + i % 3).json()
        if body["status"] == "in_review":
            ids.append(body["id"])
    if len(ids) < 3:
        pytest.skip("too few real photos went to manual review for a useful screenshot")
    return ids


def _over_cap_rotten_claim(live: Live) -> str:
    customer = live.api.customer("c-200")
    live.api.put_order("A2001", customer_id="c-200", unit_price_cents=6_800, quantity=3)
    # smoothed: the synthetic grain would not compress into a small screenshot
    fruit = make_fruit("apple", rotten=True, seed=3).filter(ImageFilter.GaussianBlur(1.2))
    response = live.api.upload(customer, jpeg_bytes(fruit))
    assert response.status_code == 201, response.text
    photo = response.json()["id"]
    body = live.api.claim(customer, [photo], order_id="A2001", quantity=1).json()
    assert body["status"] == "in_review", body
    return body["id"]


def _spread_deadlines(live: Live, ids: list[str]) -> None:
    with live.container.db.session() as session:
        for n, claim_id in enumerate(ids):
            minutes = -12 if n == 0 else 9 + n * 41
            session.execute(
                update(Claim)
                .where(Claim.id == claim_id)
                .values(sla_deadline=utcnow() + timedelta(minutes=minutes))
            )


def test_screenshots_of_the_queue_and_claim_views(browser, live):
    ids = _screenshot_claims(live)
    _spread_deadlines(live, ids)
    live.reviewer("ana")
    live.reviewer("li.wei")
    other = browser.new_context()
    press_and_wait(sign_in(other, live, "li.wei"), "n")  # someone else holds the most urgent one

    for width, height in SIZES:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = sign_in(context, live, "ana")
        page.wait_for_timeout(1100)  # one countdown tick
        _save_png(page.screenshot(), f"queue-{width}x{height}.png")
        press_and_wait(page, "n")
        page.keyboard.press("h")
        page.locator("img.heat").first.wait_for(state="visible")
        page.wait_for_load_state("networkidle")
        _save_png(page.screenshot(), f"claim-{width}x{height}.png")
        if width == 1366:
            page.keyboard.press("r")
            _save_png(page.screenshot(), "claim-reject-1366x768.png")
        # back to the queue: the lease is given back for the next round
        page.keyboard.press("Escape")
        page.keyboard.press("q")
        page.wait_for_url("**/web/queue")
        page.wait_for_timeout(300)
        context.close()

    zh = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = sign_in(zh, live, "ana")
    press_and_wait(page, "n")
    page.wait_for_load_state("networkidle")
    assert "决定" in page.content() or "全额通过" in page.content()
    _save_png(page.screenshot(), "claim-zh-1366x768.png")
    zh.close()
    other.close()

    boss_id = live.reviewer("boss", role="admin")
    admin = browser.new_context(viewport={"width": 1366, "height": 768})
    page = sign_in(admin, live, "boss")
    press_and_wait(page, "n")
    press_and_wait(page, "a")
    page.goto(f"{live.url}/web/admin")
    assert page.locator('tr[data-reviewer="boss"]').count() == 1
    _save_png(page.screenshot(), "admin-1366x768.png")

    # the heat map over a rotten spot: a synthetic rotten apple, over the auto-approve cap
    heat_claim = _over_cap_rotten_claim(live)
    with live.container.db.session() as session:
        session.execute(
            update(Claim)
            .where(Claim.id == heat_claim)
            .values(
                lease_holder=boss_id,
                leased_at=utcnow(),
                lease_expires_at=utcnow() + timedelta(minutes=5),
            )
        )
    page.goto(f"{live.url}/web/claims/{heat_claim}")
    page.keyboard.press("h")
    page.locator("img.heat").first.wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    _save_png(page.screenshot(), "claim-heatmap-1366x768.png")
    admin.close()
    for path in SCREENSHOTS.glob("*.png"):
        assert path.stat().st_size < MAX_SCREENSHOT_BYTES


# ------------------------------------------------------------------ appeals and duplicates


def _photo_bytes(produce: str = "apple", rotten: bool = False, seed: int = 1) -> bytes:
    """A real photo from the developer set when it is here (the screenshots look like the
    real thing), else a smoothed synthetic one; the tests' checks hold for either."""
    manifest = dataset_dir() / "manifest.csv"
    if manifest.exists():
        with manifest.open(newline="") as handle:
            rows = [
                r
                for r in csv.DictReader(handle)
                if r["produce"] == produce and r["condition"] == ("rotten" if rotten else "fresh")
            ]
        if rows:
            return (dataset_dir() / rows[seed % len(rows)]["image"]).read_bytes()
    fruit = make_fruit(produce, rotten=rotten, seed=seed).filter(ImageFilter.GaussianBlur(1.2))
    return jpeg_bytes(fruit)


def _submit(
    live: Live, customer_id: str, order_id: str, data: bytes, price: int, produce: str = "apple"
) -> dict:
    customer = live.api.customer(customer_id)
    live.api.put_order(
        order_id,
        customer_id=customer_id,
        produce=produce,
        unit_price_cents=price,
        delivered_hours_ago=5,
        pickup_point_id="PP-07",
    )
    upload = live.api.upload(customer, data)
    assert upload.status_code == 201, upload.text
    return live.api.claim(customer, [upload.json()["id"]], order_id=order_id, quantity=2).json()


def _claim_in_review(live: Live, customer_id: str, order_id: str, data: bytes, price: int) -> str:
    body = _submit(live, customer_id, order_id, data, price)
    if body["status"] != "in_review":
        pytest.skip(f"the photo was decided automatically ({body['status']}); nothing to review")
    return body["id"]


def _side_by_side(page, left: str, right: str) -> None:
    a, b = page.locator(left).bounding_box(), page.locator(right).bounding_box()
    assert a and b, (left, right)
    assert a["x"] + a["width"] <= b["x"] + 1, (a, b)  # left of it
    assert abs(a["y"] - b["y"]) < 40, (a, b)  # on the same line


def test_the_appeal_view_shows_the_original_decision_beside_the_appeal(browser, live):
    claim_id = _claim_in_review(live, "c-301", "A3001", _photo_bytes(seed=3), price=890)
    live.reviewer("ana")
    live.reviewer("li.wei")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    ana = sign_in(context, live, "ana")
    press_and_wait(ana, "n")
    assert claim_id_of(ana) == claim_id
    assert ana.locator("#appeal").count() == 0  # not appealed yet
    ana.keyboard.press("r")
    ana.keyboard.press("Tab")
    ana.keyboard.press("Control+a")
    ana.keyboard.type("The apples look firm and bright in the photo; we cannot see any rot.")
    press_and_wait(ana, "Control+Enter")
    context.close()

    appeal = live.api.client.post(
        f"/v1/claims/{claim_id}/appeal",
        headers=live.api.customer("c-301"),
        json={"message": "Two of the apples are soft and brown underneath. Please look again."},
    )
    assert appeal.status_code == 200, appeal.text

    for locale, name in (("en-GB", "appeal-1366x768.png"), ("zh-CN", "appeal-zh-1366x768.png")):
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale=locale)
        page = sign_in(context, live, "li.wei")
        press_and_wait(page, "n")  # an appeal goes to another reviewer than ana
        assert claim_id_of(page) == claim_id
        block = page.locator("#appeal")
        assert block.is_visible()
        original = block.locator("[data-original-decision]")
        assert original.locator('[data-field="reviewer"]').inner_text() == "ana"
        assert "we cannot see any rot" in original.locator('[data-field="message"]').inner_text()
        reason = original.locator('[data-field="reason"]').inner_text()
        assert reason == ("商品看起来正常" if locale == "zh-CN" else "produce looks fine")
        assert original.locator('[data-field="decided_at"]').inner_text().endswith("UTC")
        assert "soft and brown underneath" in block.locator("[data-appeal]").inner_text()
        _side_by_side(page, "#appeal [data-original-decision]", "#appeal [data-appeal]")
        page.wait_for_load_state("networkidle")
        _save_png(page.screenshot(), name)
        page.keyboard.press("q")
        page.wait_for_url("**/web/queue")
        context.close()


def test_screenshot_of_a_matched_duplicate_beside_the_earlier_photo(browser, live):
    data = _photo_bytes("apple", rotten=True, seed=2)
    first = _submit(live, "c-401", "A4001", data, price=450)
    earlier = first["id"]
    if first["status"] == "in_review":  # a person pays half of it (else it was paid in full)
        reviewer = live.api.reviewer("li.wei")
        assert live.api.client.post("/v1/review/lease", headers=reviewer).status_code == 200
        decided = live.api.client.post(
            f"/v1/review/claims/{earlier}/decision",
            headers=reviewer,
            json={"outcome": "approve", "amount_cents": 450, "reason_code": "partly_spoiled"},
        )
        assert decided.status_code == 200, decided.text
    later = _claim_in_review(live, "c-402", "A4002", data, price=450)  # the same photo

    live.reviewer("ana")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = sign_in(context, live, "ana")
    press_and_wait(page, "n")
    assert claim_id_of(page) == later
    panel = page.locator("section.duplicate")
    assert panel.count() >= 1 and panel.first.is_visible()
    earlier_img = panel.first.locator("img[data-earlier-photo]")
    earlier_img.wait_for(state="visible")
    assert page.evaluate("(img) => img.naturalWidth", earlier_img.element_handle()) > 0
    outcome = panel.first.locator(f'[data-earlier-claim="{earlier}"]').inner_text()
    assert "paid" in outcome and "¥9.00 → ¥" in outcome
    pair = "section.duplicate .pair figure"
    _side_by_side(page, f"{pair}:nth-child(1)", f"{pair}:nth-child(2)")
    page.wait_for_load_state("networkidle")
    _save_png(page.screenshot(), "claim-duplicate-1366x768.png")
    with live.container.db.read_session() as session:
        purposes = {
            (v.photo_id, v.purpose)
            for v in session.scalars(select(PhotoView).where(PhotoView.viewer_id != ""))
        }
    matched = panel.first.get_attribute("data-duplicate")
    assert (matched, "review_duplicate") in purposes
    context.close()
