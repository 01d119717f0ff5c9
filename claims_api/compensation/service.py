"""Double-entry ledger for compensation. At most one payout per claim (a unique
constraint, not a check) and never more than what remains uncompensated on the order line,
which is derived from the ledger itself."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from claims_api.claims.models import Claim
from claims_api.compensation.errors import (
    AlreadyPaid,
    AlreadyReversed,
    ExceedsRemaining,
    NothingToPay,
    NotPaid,
)
from claims_api.compensation.models import LedgerEntry, LedgerPosting
from claims_api.db import new_id, utcnow
from claims_api.errors import NamedError
from claims_api.orders.models import OrderLine

EXPENSE_ACCOUNT = "expense:compensation"


def store_credit_account(customer_id: str) -> str:
    return f"liability:store_credit:{customer_id}"


def net_paid_query(*where) -> Select[tuple[int]]:
    """Payouts minus reversals over the postings of the claims that match ``where``."""
    signed = case(
        (LedgerPosting.kind == "reversal", -LedgerPosting.amount_cents),
        else_=LedgerPosting.amount_cents,
    )
    return (
        select(func.coalesce(func.sum(signed), 0))
        .join(Claim, Claim.id == LedgerPosting.claim_id)
        .where(*where)
    )


def _net_paid(session: Session, *where) -> int:
    return int(session.scalar(net_paid_query(*where)) or 0)


def compensated_cents(session: Session, order_id: str, line_id: str) -> int:
    """Net amount paid out for a line."""
    return _net_paid(session, Claim.order_id == order_id, Claim.line_id == line_id)


def remaining_cents(session: Session, line: OrderLine) -> int:
    return max(0, line.value_cents - compensated_cents(session, line.order_id, line.line_id))


def _line_for_update(order_id: str, line_id: str) -> Select[tuple[OrderLine]]:
    return (
        select(OrderLine)
        .where(OrderLine.order_id == order_id, OrderLine.line_id == line_id)
        .with_for_update()
    )


def lock_line(session: Session, order_id: str, line_id: str) -> OrderLine:
    """Serialises payouts on one line (row lock on PostgreSQL; SQLite serialises writers)."""
    return session.execute(_line_for_update(order_id, line_id)).scalar_one()


def lock_line_if_exists(session: Session, order_id: str, line_id: str) -> OrderLine | None:
    """:func:`lock_line`, or None when the order has no such line."""
    return session.execute(_line_for_update(order_id, line_id)).scalar_one_or_none()


class PayoutAdapter(Protocol):
    """Moves money. Store credit is booked in the ledger alone; a refund to the original
    payment would call the payment provider here, keyed by the posting id."""

    method: str

    def send(self, posting: LedgerPosting) -> None: ...


class StoreCreditPayout:
    method = "store_credit"

    def send(self, posting: LedgerPosting) -> None:
        return None


def pay_claim(
    session: Session,
    claim: Claim,
    amount_cents: int,
    actor_id: str,
    adapter: PayoutAdapter | None = None,
    *,
    remaining: int | None = None,
) -> LedgerPosting:
    """Pays ``amount_cents`` for ``claim``. ``remaining``: what remains uncompensated on the
    claim's line as the caller computed it with :func:`remaining_cents` while holding
    :func:`lock_line` in this transaction (nothing can have been paid on the line since);
    without it, the line is locked and its remainder computed here."""
    adapter = adapter or StoreCreditPayout()
    if remaining is None:
        line = lock_line(session, claim.order_id, claim.line_id)
        remaining = remaining_cents(session, line)
    if amount_cents <= 0:
        raise NothingToPay()
    if amount_cents > remaining:
        raise ExceedsRemaining(
            f"Only {remaining} cents of this order line remain uncompensated.",
            remaining_cents=remaining,
        )
    posting = _book(session, claim, "payout", adapter.method, amount_cents, actor_id, AlreadyPaid)
    adapter.send(posting)
    return posting


def reverse_payout(session: Session, claim: Claim, actor_id: str, reason: str) -> LedgerPosting:
    payout = session.scalar(
        select(LedgerPosting).where(
            LedgerPosting.claim_id == claim.id, LedgerPosting.kind == "payout"
        )
    )
    if payout is None:
        raise NotPaid("This claim has no payout to reverse.")
    return _book(
        session,
        claim,
        "reversal",
        payout.method,
        payout.amount_cents,
        actor_id,
        AlreadyReversed,
        reason=reason,
    )


def _book(
    session: Session,
    claim: Claim,
    kind: str,
    method: str,
    amount_cents: int,
    actor_id: str,
    already_booked: type[NamedError],
    *,
    reason: str | None = None,
) -> LedgerPosting:
    """Books a balanced posting of ``kind``: a payout moves ``amount_cents`` from the
    compensation expense to the customer's store credit, a reversal moves it back.

    Flushed at once, in a savepoint: a second posting of the same kind for the claim (a
    concurrent payout, a double reversal) fails on the unique constraint here, as a 409, and
    the caller's transaction stays usable; ``already_booked`` is the error it answers."""
    expense_cents = amount_cents if kind == "payout" else -amount_cents
    posting = LedgerPosting(
        id=new_id("pst"),
        claim_id=claim.id,
        kind=kind,
        method=method,
        amount_cents=amount_cents,
        created_by=actor_id,
        reason=reason,
        created_at=utcnow(),
        entries=[
            LedgerEntry(account=EXPENSE_ACCOUNT, amount_cents=expense_cents),
            LedgerEntry(
                account=store_credit_account(claim.customer_id), amount_cents=-expense_cents
            ),
        ],
    )
    session.add(posting)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise already_booked() from exc
    return posting


def paid_cents_for_customer_since(session: Session, customer_id: str, since: datetime) -> int:
    return _net_paid(session, Claim.customer_id == customer_id, LedgerPosting.created_at >= since)
