"""End to end over HTTP: photo upload + claim against a real ``freshclaim serve``.

    python -m bench.bench_http [--db sqlite,postgres] [--concurrency 1,4,16] [--workers 1]
                               [--relay auto|in-process|apart] [--duration 20]
                               [--max-requests 200] [--out var/bench] [--quick]

For each database it starts the server as a subprocess on 127.0.0.1 (a free port,
``FRESHCLAIM_HOME`` in a temporary folder, PostgreSQL in a scratch database that is dropped
afterwards), creates a shop key, one order and one customer token per request (so no claim
limit or open claim gets in the way), then drives it from threads on 127.0.0.1 (one
``http.client`` keep-alive connection each; the load generator's CPU is reported): each request
uploads a 12-MP JPEG and submits a claim for it. A phase stops after ``--max-requests`` or
``--duration`` seconds, whichever comes first. It reports claims/s, p50/p95/p99 latency of
upload + claim, the server's peak RSS (all its processes), and the ratio of the service's
photos/s to the in-process pipeline's (decode + quality + hashes + re-encode + model scoring
in a pool of one process per core, measured in the same run). Every auto-approved claim must
come back ``paid`` with ``paid_at`` before the response arrived. The outbox relay runs in the
server on SQLite and in a ``freshclaim worker`` beside it on PostgreSQL (``--relay``; the
worker's CPU and memory count as the server's).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    DEFAULT_OUT,
    PHONE_12MP,
    REPO,
    PhotoSpec,
    cpu_seconds,
    default_model,
    free_port,
    machine_state,
    photo_bytes,
    postgres_available,
    postgres_cpu_seconds,
    print_table,
    process_tree,
    rotten_apples,
    rss_mb,
    scratch_postgres,
    summarise,
    write_json,
)

CLAIM_PRICE_CENTS = 250


# --- the in-process ceiling ------------------------------------------------------------------

_worker_state: dict[str, Any] = {}


def _init_worker(model: str, photos: list[bytes]) -> None:
    from claims_api.inference.model import Classifier
    from claims_api.photos.imaging import ImageLimits

    _worker_state["classifier"] = Classifier(Path(model), intra_op_threads=1)
    _worker_state["photos"] = photos
    _worker_state["limits"] = ImageLimits(max_bytes=20 * 1024 * 1024)


def _pipeline_once(index: int) -> tuple[float, float]:
    """Wall and CPU milliseconds (this process, all threads) of one photo."""
    from claims_api.photos.imaging import process_upload

    start, cpu = time.perf_counter(), time.process_time()
    photos = _worker_state["photos"]
    # scored while the stored copy is encoded, as the service does
    process_upload(
        photos[index % len(photos)],
        _worker_state["limits"],
        alongside=_worker_state["classifier"].score,
    )
    return (time.perf_counter() - start) * 1000.0, (time.process_time() - cpu) * 1000.0


def inprocess_throughput(
    model: Path, photos: list[bytes], count: int, processes: int
) -> dict[str, Any]:
    """Photos/s of process_upload + model scoring in a pool of ``processes`` processes."""
    pool = ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("spawn"),  # this process may run threads already
        initializer=_init_worker,
        initargs=(str(model), photos),
    )
    with pool:
        list(pool.map(_pipeline_once, range(processes * 2)))  # warm up every worker
        start = time.perf_counter()
        timings = list(pool.map(_pipeline_once, range(count)))
        wall = time.perf_counter() - start
    return {
        "processes": processes,
        "photos": count,
        "photos_per_s": round(count / wall, 2),
        "cpu_ms_per_photo": round(sum(c for _, c in timings) / count, 1),
        **summarise([ms for ms, _ in timings]),
    }


# --- the server ------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    env: dict[str, str]
    shop_key: str
    workers: int
    log_path: Path
    worker: subprocess.Popen | None = None  # `freshclaim worker`, when the relay runs apart

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self.process, self.worker) if p is not None]


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "claims_api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"freshclaim {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def _wait_ready(base_url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {base_url} not ready after {timeout:.0f} s")


def _serve_flags() -> list[str]:
    return ["--shared-socket"] if os.environ.get("FRESHCLAIM_BENCH_SHARED") == "1" else []


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(
    home: Path,
    database_url: str | None,
    model: Path,
    workers: int,
    model_threads: int,
    relay_apart: bool = False,
) -> Iterator[Server]:
    """``relay_apart``: the replica runs with FRESHCLAIM_BACKGROUND_WORKERS=false and a
    ``freshclaim worker`` process beside it delivers the outbox (the scale-out layout)."""
    env = {
        **os.environ,
        "FRESHCLAIM_HOME": str(home),
        "FRESHCLAIM_MODEL_PATH": str(model),
        "FRESHCLAIM_SECRET_KEY": secrets.token_urlsafe(32),
        "FRESHCLAIM_MODEL_THREADS": str(model_threads),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.pop("FRESHCLAIM_DATABASE_URL", None)
    if database_url:
        env["FRESHCLAIM_DATABASE_URL"] = database_url
    if relay_apart:
        env["FRESHCLAIM_BACKGROUND_WORKERS"] = "false"
    _cli(env, "migrate")
    shop_key = _cli(env, "keys", "create", "--role", "shop").strip().splitlines()[-1]
    port = free_port()
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "claims_api.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), *_serve_flags()],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        worker = None
        if relay_apart:
            worker = subprocess.Popen(
                [sys.executable, "-m", "claims_api.cli", "worker"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process)
        yield Server(process, base_url, env, shop_key, workers, log_path, worker)
    except Exception:
        print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        for started in (process, worker):
            if started is not None:
                _stop(started)


class RssSampler:
    """Samples the RSS of the server and all its children every ``interval`` seconds, and
    counts the CPU time they use meanwhile."""

    def __init__(self, pids: list[int], interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_rss_mb = 0.0
        self.peak_pss_mb = 0.0
        self.processes = 0
        self.cpu_start = self.cpu_used = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = self._tree()
            self.processes = len(pids)
            memory = rss_mb(pids)
            self.peak_rss_mb = max(self.peak_rss_mb, memory["rss_mb"])
            self.peak_pss_mb = max(self.peak_pss_mb, memory["pss_mb"])
            self._stop.wait(self.interval)

    def _tree(self) -> list[int]:
        return [pid for root in self.pids for pid in process_tree(root)]

    def __enter__(self) -> RssSampler:
        self.cpu_start = cpu_seconds(self._tree())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_used = cpu_seconds(self._tree()) - self.cpu_start

    def report(self) -> dict[str, Any]:
        hwm = rss_mb(self._tree())
        return {
            "peak_rss_mb": self.peak_rss_mb,
            "peak_pss_mb": self.peak_pss_mb,
            "peak_hwm_one_process_mb": hwm["max_hwm_mb"],
            "sum_hwm_mb": hwm["sum_hwm_mb"],
            "processes": self.processes,
            "server_cpu_s": round(self.cpu_used, 2),
        }


# --- load ----------------------------------------------------------------------------------


@dataclass
class Slot:
    """What one request needs: its own customer (token) and order."""

    customer_id: str
    token: str
    order_id: str


def _make_slot(client: httpx.Client, shop_key: str, run: str, index: int) -> Slot:
    shop = {"Authorization": f"Bearer {shop_key}"}
    customer_id = f"bench-{run}-{index}"
    order_id = f"ord-{run}-{index}"
    delivered = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    order = {
        "customer_id": customer_id,
        "delivered_at": delivered,
        "lines": [{"line_id": "1", "sku": "APL-1KG", "produce": "apple", "quantity": 4,
                   "unit_price_cents": CLAIM_PRICE_CENTS}],
    }  # fmt: skip
    _check(client.put(f"/v1/orders/{order_id}", json=order, headers=shop))
    response = _check(client.post(f"/v1/customers/{customer_id}/tokens", headers=shop))
    return Slot(customer_id, response.json()["token"], order_id)


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:500]}"
        )
    return response


def make_slots(server: Server, count: int) -> list[Slot]:
    run = secrets.token_hex(3)
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        return [_make_slot(client, server.shop_key, run, i) for i in range(count)]


def photo_set(spec: PhotoSpec, seeds: range, cache: Path) -> list[Path]:
    """Distinct photos (one per seed) cached as files; read when sent."""
    for seed in seeds:
        photo_bytes(replace(spec, seed=seed), cache)
    return [cache / f"{replace(spec, seed=seed).name}.jpg" for seed in seeds]


def multipart(data: bytes) -> tuple[bytes, str]:
    """A multipart body with one ``file`` part, built before the request is timed."""
    boundary = f"freshclaim-bench-{secrets.token_hex(8)}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class Outcome:
    upload_ms: float
    claim_ms: float
    total_ms: float
    upload_status: int
    claim_status: int
    claim: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None


class LoadClient:
    """One keep-alive HTTP/1.1 connection of the load generator, on the standard library's
    ``http.client``: the load runs on the same cores as the server, and httpx's pure-Python
    HTTP layers took CPU per upload + claim that the server then lacked; this takes a small
    part of that."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        address = httpx.URL(base_url)
        self.host, self.port, self.timeout = address.host, address.port, timeout
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def post(self, path: str, body: bytes | Path, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body``; a file is sent with ``sendfile``, straight from the page cache."""
        for attempt in (1, 2):
            try:
                self._send(path, body, headers)
                response = self.connection.getresponse()
                content = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.connection.close()  # the server closed it (after a 413, say): reconnect once
                if attempt == 2:
                    raise
                self.connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
        if response.getheader("connection", "").lower() == "close":
            self.connection.close()
        return response.status, content

    def _send(self, path: str, body: bytes | Path, headers: dict[str, str]) -> None:
        if isinstance(body, bytes):
            self.connection.request("POST", path, body=body, headers=headers)
            return
        with body.open("rb") as file:
            self.connection.putrequest("POST", path, skip_accept_encoding=True)
            for name, value in {**headers, "Content-Length": str(body.stat().st_size)}.items():
                self.connection.putheader(name, value)
            self.connection.endheaders()
            self.connection.sock.sendfile(file)

    def close(self) -> None:
        self.connection.close()


@dataclass(frozen=True)
class UploadBody:
    """A photo's multipart upload body, written to a file before the run: the load generator
    sends it with ``sendfile`` instead of reading the photo and joining a 4-MB body in Python
    for every request (CPU taken from the cores the server needs)."""

    path: Path
    content_type: str


def upload_bodies(photos: list[Path], folder: Path, name: str) -> list[UploadBody]:
    bodies = []
    for index, photo in enumerate(photos):
        body, content_type = multipart(photo.read_bytes())
        path = folder / f"{name}-{index}.multipart"
        path.write_bytes(body)
        bodies.append(UploadBody(path, content_type))
    return bodies


def one_claim(client: LoadClient, slot: Slot, upload: UploadBody) -> Outcome:
    auth = {"Authorization": f"Bearer {slot.token}"}
    start = time.perf_counter()
    upload_status, photo = client.post(
        "/v1/photos", upload.path, {**auth, "Content-Type": upload.content_type}
    )
    uploaded = time.perf_counter()
    if upload_status != 201:
        ms = (uploaded - start) * 1000
        return Outcome(ms, 0.0, ms, upload_status, 0)
    claim = {"order_id": slot.order_id, "line_id": "1", "issue": "rotten",
             "affected_quantity": 1, "photo_ids": [json.loads(photo)["id"]]}  # fmt: skip
    claim_status, answer = client.post(
        "/v1/claims",
        json.dumps(claim).encode(),
        {**auth, "Content-Type": "application/json", "Idempotency-Key": secrets.token_hex(12)},
    )
    done = time.perf_counter()
    return Outcome(
        upload_ms=(uploaded - start) * 1000,
        claim_ms=(done - uploaded) * 1000,
        total_ms=(done - start) * 1000,
        upload_status=upload_status,
        claim_status=claim_status,
        claim=json.loads(answer) if claim_status == 201 else {},
        received_at=datetime.now(UTC),
    )


def drive(
    server: Server,
    slots: list[Slot],
    bodies: list[UploadBody],
    concurrency: int,
    duration: float,
) -> tuple[list[Outcome], float]:
    """``concurrency`` threads, each with its own keep-alive connection, take the next slot
    until the slots run out or ``duration`` passes. Returns outcomes and wall seconds."""
    counter = itertools.count()
    lock = threading.Lock()
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + duration

    def worker() -> None:
        client = LoadClient(server.base_url)
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next(counter)
                if index >= len(slots):
                    return
                outcome = one_claim(client, slots[index], bodies[index % len(bodies)])
                with lock:
                    outcomes.append(outcome)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes, time.perf_counter() - start


def paid_check(outcomes: list[Outcome]) -> dict[str, Any]:
    """Every auto-approved claim is ``paid`` (ledger written) before its response arrived.
    The customer's answer has no decision: a claim the system approved is one whose timeline
    has the system's ``approved`` move."""
    auto = [o for o in outcomes if _approved_by_system(o.claim)]
    bad = [
        o.claim.get("id")
        for o in auto
        if o.claim.get("status") != "paid"
        or o.claim.get("compensation", {}).get("status") != "paid"
        or not o.claim.get("paid_at")
        or datetime.fromisoformat(o.claim["paid_at"]) > (o.received_at or datetime.now(UTC))
    ]
    outcomes_told = Counter(o.claim.get("outcome", {}).get("code") for o in outcomes)
    return {
        "auto": len(auto),
        "manual": len(outcomes) - len(auto),
        "auto_not_paid": bad,
        "customer_outcomes": dict(outcomes_told.most_common()),
    }


def _approved_by_system(claim: dict[str, Any]) -> bool:
    return any(
        move.get("status") == "approved" and move.get("actor") == "system"
        for move in claim.get("timeline", [])
    )


def phase_row(
    db: str, concurrency: int, outcomes: list[Outcome], wall: float, rss: dict[str, Any]
) -> dict[str, Any]:
    ok = [o for o in outcomes if o.upload_status == 201 and o.claim_status == 201]
    total = summarise([o.total_ms for o in ok])
    return {
        "db": db,
        "concurrency": concurrency,
        "requests": len(outcomes),
        "errors": len(outcomes) - len(ok),
        "claims_per_s": round(len(ok) / wall, 2) if wall else 0.0,
        "p50_ms": total.get("p50_ms"),
        "p95_ms": total.get("p95_ms"),
        "p99_ms": total.get("p99_ms"),
        "upload_p50_ms": summarise([o.upload_ms for o in ok]).get("p50_ms"),
        "claim_p50_ms": summarise([o.claim_ms for o in ok]).get("p50_ms"),
        "cpu_ms_per_claim": round(rss["server_cpu_s"] * 1000 / len(ok), 1) if ok else None,
        **paid_check(ok),
        **rss,
    }


StageTotals = dict[str, tuple[float, float]]


def photo_stage_totals(base_url: str) -> tuple[StageTotals, StageTotals]:
    """(seconds, photos) per pipeline stage so far from the server's /metrics: wall time and
    CPU time."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    cpu: dict[str, float] = {}
    photos = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            stage = sample.labels.get("stage")
            counted = sample.name.endswith("_total")  # counters also export _created
            if family.name == "freshclaim_photos_uploaded":
                photos += sample.value if counted else 0.0
            elif family.name == "freshclaim_photo_stage_cpu_seconds":
                if counted:
                    cpu[stage] = sample.value
            elif family.name != "freshclaim_photo_stage_seconds":
                continue
            elif sample.name.endswith("_sum"):
                sums[stage] = sample.value
            elif sample.name.endswith("_count"):
                counts[stage] = sample.value
    wall = {stage: (sums[stage], counts.get(stage, 0.0)) for stage in sums}
    return wall, {stage: (seconds, photos) for stage, seconds in cpu.items()}


def stage_means_ms(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """Mean ms per photo of each stage between two /metrics readings."""
    means = {}
    for stage, (seconds, photos) in after.items():
        seconds_before, photos_before = before.get(stage, (0.0, 0.0))
        if photos > photos_before:
            means[stage] = round((seconds - seconds_before) * 1000 / (photos - photos_before), 2)
    return means


def bench_phase(
    db: str, concurrency: int, args: argparse.Namespace, model: Path, uploads: Uploads
) -> dict[str, Any]:
    """One concurrency level against a fresh server and a fresh database (so no photo of
    an earlier phase counts as reused)."""
    with ExitStack() as stack:
        url = (
            None
            if db == "sqlite"
            else stack.enter_context(scratch_postgres("freshclaim_bench_http"))
        )
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="freshclaim-http-")))
        relay_apart = relay_layout(args.relay, db) == "apart"
        server = stack.enter_context(
            running_server(home, url, model, args.workers, args.model_threads, relay_apart)
        )
        drive(server, make_slots(server, len(uploads.warmup)), uploads.warmup, 2, 60.0)
        slots = make_slots(server, len(uploads.main))
        stages_before = photo_stage_totals(server.base_url)
        client_cpu = time.process_time()
        db_cpu = postgres_cpu_seconds() if url else None
        with RssSampler(server.pids) as sampler:
            outcomes, wall = drive(server, slots, uploads.main, concurrency, args.duration)
        client_cpu = time.process_time() - client_cpu
        if db_cpu is not None and (db_cpu_after := postgres_cpu_seconds()) is not None:
            # PostgreSQL on this host shares the cores too; it is not in the server's figure
            row_db_cpu = round((db_cpu_after - db_cpu) * 1000 / max(1, len(outcomes)), 1)
        else:
            row_db_cpu = None
        stages_after = photo_stage_totals(server.base_url)
        stages = stage_means_ms(stages_before[0], stages_after[0])
        stages_cpu = stage_means_ms(stages_before[1], stages_after[1])
        row = phase_row(db, concurrency, outcomes, wall, sampler.report())
        row["relay"] = "apart" if relay_apart else "in-process"
        row["server_photo_stage_ms"] = stages  # means in the server, under this load
        row["server_photo_stage_cpu_ms"] = stages_cpu
        # the load generator shares the cores with the server: what it costs is not the server's
        row["client_cpu_ms_per_claim"] = round(client_cpu * 1000 / max(1, len(outcomes)), 1)
        if row_db_cpu is not None:
            row["db_cpu_ms_per_claim"] = row_db_cpu
        if not row["auto"]:  # nothing auto-approved: check payment with photos the model likes
            probe, _ = drive(server, make_slots(server, len(uploads.probe)), uploads.probe, 1, 60.0)
            row["probe"] = paid_check(probe)
        return row


def relay_layout(choice: str, db: str) -> str:
    """Where the outbox relay runs: ``auto`` is each database's deployment layout, in the
    server on the embedded SQLite (a second process would contend for its one write lock
    through SQLite's sleeping busy handler), a ``freshclaim worker`` beside the replica on
    PostgreSQL (the scale-out layout; its CPU and memory are counted with the server's)."""
    if choice == "auto":
        return "in-process" if db == "sqlite" else "apart"
    return choice


def probe_photos(model: Path, cache: Path, count: int = 3) -> list[Path]:
    """Photos this model auto-approves, to check payment when none of the load's photos was
    auto-approved: real rotten-apple photos of the dataset (every 7th, so no two are frames of
    one shot), else procedural ones (what the tiny test model approves)."""
    from claims_api.inference.model import Classifier
    from claims_api.photos.imaging import ImageLimits, PhotoRejected, process_upload
    from claims_api.rules.gate import photo_gate

    classifier, limits, chosen = Classifier(model), ImageLimits(), []
    for path in rotten_apples()[::7]:
        try:
            processed = process_upload(path.read_bytes(), limits)
        except PhotoRejected:
            continue
        scores = classifier.score(processed.small_image)
        if processed.quality.ok and photo_gate(scores, None).auto_approvable:
            chosen.append(path)
            if len(chosen) == count:
                return chosen
    return chosen or photo_set(PhotoSpec(640, 480, 90, "synthetic"), range(count), cache)


@dataclass(frozen=True)
class PhotoSets:
    main: list[Path]
    warmup: list[Path]
    probe: list[Path]  # photos the model auto-approves (see probe_photos)


@dataclass(frozen=True)
class Uploads:
    """The upload bodies of :class:`PhotoSets`, ready to send."""

    main: list[UploadBody]
    warmup: list[UploadBody]
    probe: list[UploadBody]

    @classmethod
    def of(cls, photos: PhotoSets, folder: Path) -> Uploads:
        return cls(*(upload_bodies(getattr(photos, name), folder, name)
                     for name in ("main", "warmup", "probe")))  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    model = args.model or default_model(args.out / "model")
    spec = args.photo or PHONE_12MP
    cache = args.out / "photos"
    photos = PhotoSets(
        main=photo_set(spec, range(args.max_requests), cache),
        warmup=photo_set(spec, range(100_000, 100_000 + args.warmup), cache),
        probe=probe_photos(model, cache),
    )
    state_before = machine_state()
    cores = os.cpu_count() or 1
    ceiling_photos = [p.read_bytes() for p in photos.main[: args.inprocess_photos]]
    ceiling = inprocess_throughput(model, ceiling_photos, args.inprocess_photos, cores)
    rows = []
    with tempfile.TemporaryDirectory(prefix="freshclaim-bodies-") as scratch:
        uploads = Uploads.of(photos, Path(scratch))
        for db in args.db:
            problem = postgres_available() if db == "postgres" else None
            if problem:
                print(f"skipping postgres: {problem}")
                continue
            for concurrency in args.concurrency:
                # the ceiling again right before the phase: background load varies
                here = inprocess_throughput(model, ceiling_photos, args.inprocess_photos, cores)
                row = bench_phase(db, concurrency, args, model, uploads)
                row["inprocess_photos_per_s"] = here["photos_per_s"]
                row["vs_inprocess"] = round(row["claims_per_s"] / here["photos_per_s"], 3)
                # load-robust estimate: with every core busy, throughput goes as 1 / CPU per item
                row["cpu_ratio"] = round(here["cpu_ms_per_photo"] / row["cpu_ms_per_claim"], 3)
                rows.append(row)
                print(row, flush=True)
    sizes = [p.stat().st_size for p in photos.main]
    result = {
        "model": model.name,
        "photo": {
            "spec": spec.name,
            "distinct": len(sizes),
            "mean_mb": round(sum(sizes) / len(sizes) / 1e6, 2),
        },
        "workers": args.workers,
        "model_threads": args.model_threads,
        "inprocess": ceiling,
        "phases": rows,
        "machine_before": state_before,
        "machine_after": machine_state(),
    }
    report(result)
    write_json(args.out / f"http-{args.tag or f'w{args.workers}'}.json", result)
    return result


def report(result: dict[str, Any]) -> None:
    c = result["inprocess"]
    print(
        f"\nin-process pipeline + scoring, {c['processes']} processes: "
        f"{c['photos_per_s']} photos/s "
        f"(p50 {c['p50_ms']} ms, {c['cpu_ms_per_photo']} ms CPU per photo); "
        f"{result['photo']['distinct']} photos like "
        f"{result['photo']['spec']}, {result['photo']['mean_mb']} MB on average"
    )
    print_table(
        f"HTTP upload + claim, freshclaim serve --workers {result['workers']}",
        result["phases"],
        ["db", "relay", "concurrency", "requests", "errors", "claims_per_s",
         "inprocess_photos_per_s", "vs_inprocess", "cpu_ratio", "p50_ms",
         "p95_ms", "p99_ms", "upload_p50_ms", "claim_p50_ms", "cpu_ms_per_claim",
         "db_cpu_ms_per_claim", "auto", "manual",
         "peak_rss_mb", "peak_pss_mb", "processes"],
    )  # fmt: skip
    for row in result["phases"]:
        stages = row.get("server_photo_stage_ms", {})
        if stages:
            shown = ", ".join(f"{k} {v}" for k, v in stages.items())
            print(
                f"{row['db']} c={row['concurrency']}: photo stages in the server (mean ms): {shown}"
            )
        cpu = row.get("server_photo_stage_cpu_ms", {})
        if cpu:
            shown = ", ".join(f"{k} {v}" for k, v in cpu.items())
            print(
                f"{row['db']} c={row['concurrency']}: their CPU (mean ms per photo; the "
                f"model's own pool not included): {shown}"
            )
        if "probe" in row:
            print(
                f"{row['db']} c={row['concurrency']}: no claim was auto-approved under load; "
                f"probe with photos the model approves: {row['probe']}"
            )
        if row["auto_not_paid"] or row.get("probe", {}).get("auto_not_paid"):
            print(
                f"!! {row['db']} c={row['concurrency']}: auto-approved but not paid: "
                f"{row['auto_not_paid']}"
            )


def _spec(text: str) -> PhotoSpec:
    size, _, quality = text.partition("q")
    width, height = (int(v) for v in size.lower().rstrip("-").split("x"))
    return PhotoSpec(width, height, int(quality or 90), "dataset")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", default="sqlite,postgres", type=lambda s: s.split(","))
    p.add_argument("--concurrency", default="1,4,16", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--model-threads", type=int, default=1)
    p.add_argument(
        "--relay", choices=("auto", "in-process", "apart"), default="auto",
        help="outbox relay in the server or in a `freshclaim worker` beside it "
        "(auto: in-process on SQLite, apart on PostgreSQL)",
    )  # fmt: skip
    p.add_argument("--duration", type=float, default=20.0, help="seconds per phase at most")
    p.add_argument("--max-requests", type=int, default=200, help="requests per phase at most")
    p.add_argument("--warmup", type=int, default=6)
    p.add_argument("--inprocess-photos", type=int, default=100)
    p.add_argument("--photo", type=_spec, default=None, help="e.g. 1080x810q85 (default 12 MP)")
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--tag", default="", help="JSON file name: http-<tag>.json (default w<N>)")
    p.add_argument("--quick", action="store_true", help="a few requests, to check it works")
    args = p.parse_args(argv)
    if args.quick:
        args.concurrency = [1, 2]
        args.max_requests, args.duration, args.warmup = 4, 10.0, 2
        args.inprocess_photos = 4
        args.photo = args.photo or PhotoSpec(1080, 810, 85)
    return args


if __name__ == "__main__":
    main()
