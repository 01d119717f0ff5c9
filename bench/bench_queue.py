"""The review queue under a backlog: lease-next and decide with 100,000 claims waiting
(PostgreSQL).

    python -m bench.bench_queue [--claims 100000] [--reviewers 1,4] [--decisions 400]
                                [--modes thread,process,paced] [--think-ms 250]
                                [--out var/bench] [--quick]

Creates a scratch database (dropped afterwards), migrates it, COPYs ``--claims`` waiting
claims (with their customers, orders and lines), then has reviewers lease the most urgent
claim and decide it, each through the service functions the API routes call, one
transaction each. Reports p50/p95/p99 of lease-next alone, of the lease route's work
(lease-next + the claim it returns) and of a decision. Target: lease-next p99 <= 20 ms at
100,000 waiting claims.

Reviewer models (``--modes``): ``thread`` and ``process`` run every reviewer flat out, as
threads of one process (one GIL and one pool, like one ``freshclaim serve`` worker) or as
processes (like reviewers on different replicas). With more reviewers than cores these are
stress tests: each lease waits for the CPU the others' decisions take, so their p99 measures
the machine's saturation more than the queue. ``paced`` is threads that pause ``--think-ms``
on average after each decision (people take seconds per claim), so the leases of several
reviewers overlap without the machine being saturated: the case the target is about.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from bench.common import (
    DEFAULT_OUT,
    machine_state,
    postgres_available,
    print_table,
    scratch_postgres,
    summarise,
    write_json,
)
from claims_api.auth.principal import Principal
from claims_api.db import Database
from claims_api.rules.policy import Policy

CLAIMS_PER_ORDER = 1
# Paced reviewers' mean pause between decisions: people take seconds per claim; a quarter of a
# second keeps the run short and still has 4 reviewers' leases overlap now and then.
DEFAULT_THINK_S = 0.25
CUSTOMERS = 5000
DECISION_JSON = (
    '{"route": "manual", "reasons": [{"code": "model_not_confident", "message": "The photo '
    'does not clearly show spoilage."}], "model_version": "bench", "policy_version": "bench"}'
)


_FILL_BY_TYPE: dict[str, Any] = {
    "character varying": "",
    "text": "",
    "integer": 0,
    "bigint": 0,
    "boolean": False,
    "json": "{}",
    "jsonb": "{}",
}


def _required_extras(db: Database, table: str, columns: list[str]) -> dict[str, Any]:
    """Values for NOT NULL columns without a default that ``columns`` leaves out (the schema
    grows while the benchmark stays put)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = :t AND table_schema = current_schema() "
                "AND is_nullable = 'NO' AND column_default IS NULL"
            ),
            {"t": table},
        ).all()
    now = datetime.now(UTC)
    return {
        name: _FILL_BY_TYPE.get(kind, now if kind.startswith("timestamp") else "")
        for name, kind in rows
        if name not in columns
    }


def _copy(db: Database, table: str, columns: list[str], rows: Iterator[tuple]) -> None:
    extras = _required_extras(db, table, columns)
    columns = [*columns, *extras]
    tail = tuple(extras.values())
    raw = db.engine.raw_connection()
    try:
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row + tail)
        raw.commit()
    finally:
        raw.close()


def seed(db: Database, claims: int, seed_value: int = 7) -> float:
    """COPY ``claims`` waiting claims, one order line each; returns seconds taken."""
    start = time.perf_counter()
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    customers = min(CUSTOMERS, claims)
    _copy(db, "customers", ["id", "training_consent", "created_at"],
          ((f"cus-{i}", False, now) for i in range(customers)))  # fmt: skip
    _copy(db, "orders", ["id", "customer_id", "delivered_at", "created_at", "updated_at"],
          ((f"ord-{i}", f"cus-{i % customers}", now - timedelta(hours=5), now, now)
           for i in range(claims)))  # fmt: skip
    _copy(db, "order_lines", ["order_id", "line_id", "sku", "produce", "quantity",
                              "unit_price_cents"],
          ((f"ord-{i}", "1", "APL-1KG", "apple", 4, 250) for i in range(claims)))  # fmt: skip
    columns = ["id", "customer_id", "order_id", "line_id", "issue", "affected_quantity",
               "status", "requested_cents", "decision", "verification", "submitted_at",
               "sla_deadline", "appealed", "updated_at"]  # fmt: skip
    if "reason_codes" in _required_extras(db, "claims", columns):
        columns.append("reason_codes")

    def rows() -> Iterator[tuple]:
        for i in range(claims):
            submitted = now - timedelta(seconds=rng.uniform(0, 6 * 3600))
            deadline = submitted + timedelta(hours=4)
            row = (f"clm_{i:024x}", f"cus-{i % customers}", f"ord-{i}", "1", "rotten",
                   rng.randint(1, 4), "in_review", rng.randint(1, 4) * 250, DECISION_JSON,
                   '{"signals": []}', submitted, deadline, False, now)  # fmt: skip
            yield row + ((",model_not_confident,",) if len(columns) > len(row) else ())

    _copy(db, "claims", columns, rows())
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - start


def make_reviewers(db: Database, count: int, tag: str) -> list[Principal]:
    from claims_api.auth.service import create_reviewer

    reviewers = []
    with db.session() as session:
        for i in range(count):
            reviewer = create_reviewer(session, f"bench-{tag}-{i}", "a-long-password")
            reviewers.append(Principal(kind="reviewer", id=reviewer.id, name=reviewer.username))
    return reviewers


def _decision(rng: random.Random):
    from claims_api.review.schemas import DecisionIn

    roll = rng.random()
    if roll < 0.6:
        return DecisionIn(outcome="approve", reason_code="spoiled_confirmed")
    if roll < 0.9:
        return DecisionIn(outcome="reject", reason_code="not_spoiled", message="Looks fresh.")
    return DecisionIn(
        outcome="request_photos", reason_code="more_photos_needed", message="Closer, please."
    )


def review_loop(
    db: Database, reviewer: Principal, decisions: int, timings: dict[str, list[float]],
    lock: threading.Lock, with_claim_out: bool, think_s: float = 0.0,
) -> None:  # fmt: skip
    """Lease, (render the claim,) decide: ``decisions`` times, each a transaction of its own.
    ``think_s``: a mean pause after each decision (exponentially distributed, so reviewers
    drift apart and sometimes collide, as people do), kept out of the timings."""
    from claims_api.claims.service import claim_out
    from claims_api.review import service

    rng = random.Random(reviewer.id)
    for _ in range(decisions):
        start = time.perf_counter()
        with db.session() as session:
            claim = service.lease_next(session, reviewer, 300)
            if claim is None:
                return
            session.flush()  # the lease's own writes count (else claim_out's autoflush sends them)
            leased = time.perf_counter()
            if with_claim_out:
                claim_out(session, claim, Policy()).model_dump(mode="json")
            claim_id = claim.id
        lease_done = time.perf_counter()
        with db.session() as session:
            service.record_decision(session, reviewer, claim_id, _decision(rng), Policy())
        decided = time.perf_counter()
        with lock:
            timings["lease_next"].append((leased - start) * 1000)
            timings["lease_route"].append((lease_done - start) * 1000)
            timings["decide"].append((decided - lease_done) * 1000)
        if think_s:
            time.sleep(rng.expovariate(1.0 / think_s))


def run_reviewers(
    db: Database,
    reviewers: list[Principal],
    decisions: int,
    mode: str = "thread",
    think_s: float = DEFAULT_THINK_S,
) -> dict[str, Any]:
    """``thread`` and ``process`` run the reviewers flat out (a stress test: with more reviewers
    than cores, each lease waits for the others' CPU); ``paced`` is threads that pause
    ``think_s`` on average between decisions."""
    timings: dict[str, list[float]] = {"lease_next": [], "lease_route": [], "decide": []}
    if mode in ("thread", "paced"):
        wall = _run_threads(db, reviewers, decisions, timings, think_s if mode == "paced" else 0)
    else:
        wall = _run_processes(db.url, reviewers, decisions, timings)
    done = len(timings["decide"])
    return {
        "mode": mode,
        "think_ms": round(think_s * 1000) if mode == "paced" else 0,
        "reviewers": len(reviewers),
        "decisions": done,
        "decisions_per_s": round(done / wall, 1),
        **{f"{k}_{m}": v for k, ms in timings.items() for m, v in _short(summarise(ms)).items()},
    }


def _run_threads(
    db: Database,
    reviewers: list[Principal],
    decisions: int,
    timings: dict[str, list[float]],
    think_s: float = 0.0,
) -> float:
    lock = threading.Lock()
    threads = [
        threading.Thread(target=review_loop, args=(db, r, decisions, timings, lock, True, think_s))
        for r in reviewers
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def _reviewer_process(url: str, reviewer: Principal, decisions: int, barrier, results) -> None:
    """One reviewer in a process of its own (spawned: nothing inherited but the arguments)."""
    import claims_api.models  # noqa: F401  (every mapped class, as the service has them)

    db = Database(url)
    timings: dict[str, list[float]] = {"lease_next": [], "lease_route": [], "decide": []}
    try:
        with db.session() as session:  # connect and import everything before the clock runs
            session.execute(text("SELECT 1"))
        barrier.wait()
        review_loop(db, reviewer, decisions, timings, threading.Lock(), True)
    finally:
        results.put(timings)
        db.dispose()


def _run_processes(
    url: str, reviewers: list[Principal], decisions: int, timings: dict[str, list[float]]
) -> float:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(reviewers) + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_reviewer_process, args=(url, r, decisions, barrier, results))
        for r in reviewers
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    collected = [results.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        raise RuntimeError(f"a reviewer process failed: exit codes {[p.exitcode for p in procs]}")
    for one in collected:
        for key, values in one.items():
            timings[key].extend(values)
    return wall


def _short(summary: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in summary.items() if k in ("p50_ms", "p95_ms", "p99_ms")}


def lease_statements(db: Database) -> dict[str, Any]:
    """The SQL statements one lease-next sends (captured from the engine, as the service runs
    them; the connection check on checkout, BEGIN and COMMIT are round trips on top) and
    PostgreSQL's plan of each, run with ``EXPLAIN ANALYZE`` in a transaction rolled back."""
    from claims_api.review import service

    reviewer = make_reviewers(db, 1, "plans")[0]
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.session() as session:
            service.lease_next(session, reviewer, 300)
            session.flush()
            session.rollback()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    plans = []
    with db.engine.connect() as conn:
        for statement, parameters in seen:
            rows = conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {statement}", parameters
            )
            plans.append("\n".join(r[0] for r in rows))
            conn.rollback()
    return {
        "count": len(seen),
        "statements": [" ".join(st.split())[:120] for st, _ in seen],
        "plans": plans,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    problem = postgres_available()
    if problem:
        print(f"skipping the queue benchmark: {problem}")
        return {"skipped": problem}
    from claims_api.migrate import upgrade

    state_before = machine_state()
    with scratch_postgres("freshclaim_bench_queue") as url:
        upgrade(url)
        db = Database(url)
        try:
            seconds = seed(db, args.claims)
            rows = []
            for count in args.reviewers:
                for mode in args.modes:
                    if mode != "thread" and count == 1:
                        continue  # one reviewer overlaps with no one: the thread row covers it
                    reviewers = make_reviewers(db, count, f"r{len(rows)}")
                    rows.append(run_reviewers(db, reviewers, args.decisions // count, mode,
                                              args.think_ms / 1000))  # fmt: skip
            statements = lease_statements(db)
        finally:
            db.dispose()
    result = {
        "claims_waiting": args.claims,
        "seed_seconds": round(seconds, 1),
        "results": rows,
        "lease_statements": statements,
        "machine_before": state_before,
        "machine_after": machine_state(),
    }
    report(result)
    write_json(args.out / "queue.json", result)
    return result


def report(result: dict[str, Any]) -> None:
    print(f"\nreview queue: {result['claims_waiting']} claims waiting on PostgreSQL "
          f"(seeded by COPY in {result['seed_seconds']} s)")  # fmt: skip
    statements = result["lease_statements"]
    print(f"SQL statements per lease-next: {statements['count']}")
    for statement in statements["statements"]:
        print(f"  {statement}")
    print_table(
        "lease-next (one transaction) / lease route (+ claim returned) / decision, ms",
        result["results"],
        ["mode", "think_ms", "reviewers", "decisions", "decisions_per_s", "lease_next_p50_ms",
         "lease_next_p95_ms", "lease_next_p99_ms", "lease_route_p50_ms", "lease_route_p99_ms",
         "decide_p50_ms", "decide_p99_ms"],
    )  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--claims", type=int, default=100_000)
    p.add_argument("--reviewers", default="1,4", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--decisions", type=int, default=400, help="per reviewer count, in total")
    p.add_argument("--modes", default="thread,process,paced", type=lambda s: s.split(","),
                   help="thread: a thread per reviewer, flat out; process: a process each, "
                   "flat out; paced: threads pausing --think-ms after each decision")  # fmt: skip
    p.add_argument("--think-ms", type=float, default=DEFAULT_THINK_S * 1000,
                   help="paced reviewers' mean pause between decisions")  # fmt: skip
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--quick", action="store_true", help="a small queue, to check it works")
    args = p.parse_args(argv)
    if args.quick:
        args.claims, args.decisions, args.reviewers = 500, 8, [1, 2]
    return args


if __name__ == "__main__":
    main()
