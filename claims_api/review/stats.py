"""Reviewer statistics for the admin page: throughput, time to decision, SLA breaches and how
often reviewers overturn the model (per reviewer and overall).

"The model said rotten" means the lowest rotten probability among a claim's photos reached
the auto-approve threshold that was in force when the claim was scored (read from the
``model_not_confident`` signal the reviewer saw); an overturn is such a claim rejected, or a
claim under the threshold approved. Requests for more photos are neither.

"Per hour" is per hour *worked*, not per hour of the chosen window (a reviewer on one
four-hour shift a week is not slow). Time worked is the sum of each reviewer's work
sessions: a session runs from the lease taken for its first decision to its last decision,
and a pause of more than :data:`SESSION_GAP` between one decision and the next lease starts a
new one. Sessions rather than clock hours with a decision in them: clock hours count 10:50 to
11:10 as two hours, and a short session at the end of an hour would halve the rate."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from claims_api.auth.models import Reviewer
from claims_api.claims.models import Claim
from claims_api.claims.states import Status
from claims_api.db import utcnow
from claims_api.review.models import ReviewDecision

# A longer pause between one decision and the next claim is a break, not time spent working.
SESSION_GAP = timedelta(minutes=30)
# A lone decision whose lease time is unknown still took some time; without a floor its
# session would last 0 s and the rate be infinite.
MIN_SESSION = timedelta(minutes=1)


def worked_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    """The seconds worked in ``(lease taken, decided)`` spans of one reviewer: the spans
    joined into sessions (see the module's docstring), each session's length summed."""
    total = timedelta()
    start: datetime | None = None
    end: datetime | None = None
    for began, decided in sorted(spans, key=lambda span: span[1]):
        if start is None or end is None or began - end > SESSION_GAP:
            if start is not None and end is not None:
                total += max(end - start, MIN_SESSION)
            start = began
        else:
            start = min(start, began)
        end = decided
    if start is not None and end is not None:
        total += max(end - start, MIN_SESSION)
    return total.total_seconds()


@dataclass
class ReviewerStats:
    reviewer_id: str
    username: str
    decisions: int = 0
    approved: int = 0
    rejected: int = 0
    photos_requested: int = 0
    sla_breaches: int = 0
    model_scored: int = 0
    overturned: int = 0
    durations: list[float] = field(default_factory=list, repr=False)
    spans: list[tuple[datetime, datetime]] = field(default_factory=list, repr=False)
    hours_worked: float = 0.0

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None

    @property
    def overturn_rate(self) -> float | None:
        return self.overturned / self.model_scored if self.model_scored else None

    @property
    def per_hour(self) -> float | None:
        """Decisions per hour worked; None when no time was worked."""
        return self.decisions / self.hours_worked if self.hours_worked > 0 else None


@dataclass
class Stats:
    since: datetime
    reviewers: list[ReviewerStats]
    total: ReviewerStats
    waiting: int
    overdue: int


def _threshold(seen: dict | None) -> float | None:
    for signal in (seen or {}).get("signals", []):
        if isinstance(signal, dict) and signal.get("code") == "model_not_confident":
            value = signal.get("threshold")
            return float(value) if isinstance(value, int | float) else None
    return None


def is_overturn(outcome: str, p_rotten: float | None, threshold: float | None) -> bool | None:
    """True/False for an approve or reject the model scored; None when it does not count."""
    if p_rotten is None or threshold is None or outcome not in ("approve", "reject"):
        return None
    model_rotten = p_rotten >= threshold
    return (model_rotten and outcome == "reject") or (not model_rotten and outcome == "approve")


def _add(row: ReviewerStats, decision: ReviewDecision, deadline: datetime) -> None:
    row.decisions += 1
    if decision.outcome == "approve":
        row.approved += 1
    elif decision.outcome == "reject":
        row.rejected += 1
    else:
        row.photos_requested += 1
    if decision.decided_at > deadline:
        row.sla_breaches += 1
    if decision.leased_at is not None:
        row.durations.append((decision.decided_at - decision.leased_at).total_seconds())
    row.spans.append((decision.leased_at or decision.decided_at, decision.decided_at))
    overturn = is_overturn(decision.outcome, decision.model_p_rotten, _threshold(decision.seen))
    if overturn is not None:
        row.model_scored += 1
        row.overturned += int(overturn)


def _queue_counts(session: Session, now: datetime) -> tuple[int, int]:
    waiting, overdue = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Claim.sla_deadline < now, 1), else_=0)), 0),
        ).where(Claim.status == Status.IN_REVIEW)
    ).one()
    return int(waiting or 0), int(overdue or 0)


def reviewer_stats(session: Session, days: int = 7) -> Stats:
    now = utcnow()
    since = now - timedelta(days=days)
    rows = session.execute(
        select(ReviewDecision, Reviewer.username, Claim.sla_deadline)
        .join(Reviewer, Reviewer.id == ReviewDecision.reviewer_id)
        .join(Claim, Claim.id == ReviewDecision.claim_id)
        .where(ReviewDecision.decided_at >= since)
        .order_by(ReviewDecision.id)
    ).all()
    per: dict[str, ReviewerStats] = {}
    total = ReviewerStats(reviewer_id="", username="")
    for decision, username, deadline in rows:
        row = per.setdefault(
            decision.reviewer_id, ReviewerStats(reviewer_id=decision.reviewer_id, username=username)
        )
        _add(row, decision, deadline)
        _add(total, decision, deadline)
    for row in per.values():
        row.hours_worked = worked_seconds(row.spans) / 3600
    # the team's rate per reviewer-hour: reviewers' sessions overlap, so their hours add up
    total.hours_worked = sum(row.hours_worked for row in per.values())
    waiting, overdue = _queue_counts(session, now)
    return Stats(
        since=since,
        reviewers=sorted(per.values(), key=lambda r: (-r.decisions, r.username)),
        total=total,
        waiting=waiting,
        overdue=overdue,
    )
