"""``freshclaim``: run the service and administer it from the command line."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from claims_api.config import Settings, get_settings

if TYPE_CHECKING:
    from claims_api.rules.gate import PhotoGate

app = typer.Typer(help="FreshClaim: AI claims review for fresh-food retail.", no_args_is_help=True)
keys_app = typer.Typer(help="Shop-backend and admin API keys.", no_args_is_help=True)
reviewers_app = typer.Typer(help="Reviewer accounts.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
dataset_app = typer.Typer(help="Training data from reviewers' labels.", no_args_is_help=True)
app.add_typer(reviewers_app, name="reviewers")
app.add_typer(dataset_app, name="dataset")
webhooks_app = typer.Typer(help="Webhook endpoints and their deliveries.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


class CertificationMode(StrEnum):
    certified = "certified"
    validated = "validated"


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from claims_api.migrate import upgrade

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    before, after = upgrade(settings.resolved_database_url)
    where = _redact(settings.resolved_database_url)
    if before is None:
        typer.echo(f"created the schema (revision {after}) in {where}")
    elif before != after:
        typer.echo(f"upgraded {where} from revision {before} to {after}")
    else:
        typer.echo(f"database at {where} is up to date (revision {after})")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (one per CPU core is usually best).")
    ] = 1,
    shared_socket: Annotated[
        bool,
        typer.Option(
            help="Workers share one listening socket (uvicorn's own --workers) instead of one "
            "SO_REUSEPORT socket each."
        ),
    ] = False,
) -> None:
    """Run the HTTP service (uvicorn with uvloop and httptools)."""
    # Requests already run in parallel; a BLAS thread pool per request only oversubscribes
    # the cores, and under load an upload then takes many times longer. Set before numpy loads.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    settings = get_settings()
    if settings.resolved_model_path() is None:
        # The service still starts (every claim then goes to a person); say why up front.
        typer.echo(f"warning: {_no_model_found(settings)}", err=True)
    if workers > 1:
        _share_metrics_between_workers(settings)
    if workers > 1 and shared_socket:
        import uvicorn

        from claims_api.serving import APP

        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, loop="uvloop",
                    http="httptools", proxy_headers=True, access_log=False)  # fmt: skip
        return
    from claims_api.serving import run

    raise typer.Exit(run(host, port, workers))


def _share_metrics_between_workers(settings: Settings) -> None:
    """prometheus-client's multiprocess mode: each worker writes its counters to files in
    PROMETHEUS_MULTIPROC_DIR (default ``home/prometheus``) and ``/metrics``, whichever worker
    answers it, sums them all. Set before any worker imports prometheus_client; the files of
    an earlier run are deleted, or their counts would be added to this run's. (Named here,
    not imported from observability: importing prometheus_client in the supervisor before
    the variable is set would fork workers that keep their counts in memory.)"""
    variable = "PROMETHEUS_MULTIPROC_DIR"
    folder = Path(os.environ.get(variable) or settings.home / "prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[variable] = str(folder)


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is pending, release expired leases, exit.")
    ] = False,
) -> None:
    """Run the outbox relay and the review-lease sweeper on their own, beside replicas
    started with FRESHCLAIM_BACKGROUND_WORKERS=false (several workers may run at once)."""
    import signal
    import threading

    from claims_api import background
    from claims_api.db import Database
    from claims_api.observability import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format)
    db = Database(settings.resolved_database_url)
    try:
        if once:
            drained = background.drain(db, settings)
            typer.echo(
                f"published {drained.events_published} events, "
                f"released {drained.leases_released} expired leases; "
                f"{drained.webhook_attempts} webhook attempts, "
                f"{drained.events_streamed} events streamed "
                f"({_redact(settings.resolved_database_url)})"
            )
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        typer.echo(f"worker running against {_redact(settings.resolved_database_url)}")
        background.run_until(stop, db, settings)
    finally:
        db.dispose()


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="shop or admin")],
    name: Annotated[str, typer.Option(help="Who the key is for.")] = "",
) -> None:
    """Create an API key; the key itself is printed on the last line, once."""
    from claims_api.auth.service import KEY_ROLES, create_api_key
    from claims_api.db import Database

    if role not in KEY_ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(KEY_ROLES)}", param_hint="--role")
    db = Database(get_settings().resolved_database_url)
    with db.session() as session:
        key, plaintext = create_api_key(session, role, name)
    typer.echo(f"created {role} key {key.id} ({key.prefix}…); store it now, it is not shown again:")
    typer.echo(plaintext)


@reviewers_app.command("create")
def reviewers_create(
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[str, typer.Option(help="reviewer or admin")] = "reviewer",
) -> None:
    """Create a reviewer account."""
    from claims_api.auth.service import create_reviewer
    from claims_api.db import Database
    from claims_api.errors import ApiError

    db = Database(get_settings().resolved_database_url)
    try:
        with db.session() as session:
            reviewer = create_reviewer(session, username, password, role)
    except ApiError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created {role} {username} ({reviewer.id})")


@reviewers_app.command("unlock")
def reviewers_unlock(username: Annotated[str, typer.Option()]) -> None:
    """Let a reviewer sign in again now, before their failed-login window ends."""
    from sqlalchemy import select

    from claims_api.auth.models import Reviewer
    from claims_api.auth.throttle import clear_user
    from claims_api.db import Database

    db = Database(get_settings().resolved_database_url)
    try:
        with db.session() as session:
            if session.scalar(select(Reviewer.id).where(Reviewer.username == username)) is None:
                typer.echo(f"error: no reviewer is named {username!r}", err=True)
                raise typer.Exit(1)
            clear_user(session, username)
    finally:
        db.dispose()
    typer.echo(f"cleared the failed logins of {username}")


@app.command()
def predict(
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    model: Annotated[Path | None, typer.Option(help="ONNX model (default: the service's).")] = None,
    produce: Annotated[
        str | None,
        typer.Option(
            help="The ordered produce: the photo gate then also applies the service's "
            "produce-match rule.",
        ),
    ] = None,
    mode: Annotated[
        CertificationMode | None,
        typer.Option(
            help="certified: a kind auto-approves only at its certified threshold; "
            "validated: the model's global threshold (default: the policy's mode).",
        ),
    ] = None,
) -> None:
    """Score photos exactly as the service does (same decoding, same model code) and give
    the photo gate's answer: ``auto_approvable`` and the reason codes that keep it from that
    (the same gate as the upload check and the claim decision)."""
    from claims_api.inference.model import Classifier, ModelLoadError
    from claims_api.photos.imaging import ImageLimits, PhotoRejected, process_upload
    from claims_api.rules.gate import photo_gate
    from claims_api.rules.policy import load_policy

    settings = get_settings()
    policy_mode = mode.value if mode else load_policy(settings.policy_file).certification_mode
    path = model or settings.resolved_model_path()
    if path is None:
        typer.echo(f"error: {_no_model_found(settings)}", err=True)
        raise typer.Exit(2)
    try:
        classifier = Classifier(path, intra_op_threads=settings.model_threads)
    except ModelLoadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    limits = ImageLimits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        stored_max_side=settings.stored_photo_max_side,
    )
    failed = False
    for image in images:
        try:
            processed = process_upload(image.read_bytes(), limits)
        except PhotoRejected as exc:
            failed = True
            row = {"path": str(image), "error": {"code": exc.code, "message": exc.message}}
        else:
            scores = classifier.score(processed.small_image)
            quality = [p.code for p in processed.quality.problems]
            gate = photo_gate(scores, produce, quality, policy_mode)
            row = {
                "path": str(image),
                "produce": scores.produce,
                "produce_confidence": scores.produce_confidence,
                "p_rotten": scores.p_rotten,
                "ood_score": scores.ood_score,
                "in_distribution": scores.in_distribution,
                "auto_approvable": gate.auto_approvable,
                "reasons": list(gate.codes),
                **_certification_report(gate),
                "model_version": scores.model_version,
                "quality_ok": processed.quality.ok,
                "quality_problems": quality,
            }
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))
    if failed:
        raise typer.Exit(1)


@dataset_app.command("export")
def dataset_export(
    since: Annotated[str, typer.Option(help="Labels from this ISO date or time on.")],
    out: Annotated[Path, typer.Option(help="Folder for manifest.csv, images/, datasheet.")],
) -> None:
    """Reviewer-labelled photos of consenting customers, in the manifest format of data/,
    split by customer, duplicates removed, with a datasheet (see
    claims_api.retraining.export for the label sources and the conflict rule)."""
    from datetime import UTC, datetime

    from claims_api.container import build_storage
    from claims_api.db import Database
    from claims_api.retraining.export import export_dataset
    from claims_api.rules.policy import load_policy

    try:
        start = datetime.fromisoformat(since)
    except ValueError as exc:
        typer.echo(f"error: --since {since!r} is not an ISO date or time", err=True)
        raise typer.Exit(2) from exc
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    settings = get_settings()
    policy = load_policy(settings.policy_file)
    db = Database(settings.resolved_database_url)
    with db.read_session() as session:
        sheet = export_dataset(
            session, build_storage(settings), start, out, policy.duplicate_max_distance
        )
    typer.echo(json.dumps(sheet, ensure_ascii=False, indent=2))


@app.command()
def docs(
    check: Annotated[
        bool, typer.Option("--check", help="Only report files whose generated blocks differ.")
    ] = False,
) -> None:
    """Rewrite the generated parts of docs/ (configuration table, ...) from the code."""
    from claims_api import docgen

    raise typer.Exit(docgen.main(["--check"] if check else []))


def _certification_report(gate: PhotoGate) -> dict:
    """Whether the photo's kind is certified, and why the photo is (not) auto-approvable."""
    cert = gate.certification
    if cert is None:
        return {"kind": None, "certification": None, "why": "the photo could not be scored"}
    if gate.auto_approvable:
        why = (
            f"auto-approvable: {cert.kind} is certified at {cert.threshold}"
            if cert.used_certificate
            else f"auto-approvable at the model's validated, uncertified threshold {cert.threshold}"
        )
    else:
        why = "not auto-approvable: " + ", ".join(gate.codes)
    return {
        "kind": cert.kind,
        "kind_certified": cert.certificate is not None,
        "certification": cert.status,
        "threshold": cert.threshold,
        "certificate": cert.used_certificate,
        "why": why,
    }


def _no_model_found(settings: Settings) -> str:
    where = settings.model_dir
    missing = "" if where.is_dir() else " (the folder does not exist)"
    return (
        f"no model: FRESHCLAIM_MODEL_PATH is not set and there is no *.onnx file in "
        f"{where}{missing}; set FRESHCLAIM_MODEL_PATH or FRESHCLAIM_MODEL_DIR"
    )


@contextmanager
def _webhooks_session():
    """A write session for a webhooks command; an ApiError becomes an error line and exit 1."""
    from claims_api.db import Database
    from claims_api.errors import ApiError

    db = Database(get_settings().resolved_database_url)
    try:
        with db.session() as session:
            yield session
    except ApiError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()


def _cli_actor():
    from claims_api.auth.principal import Principal

    return Principal(kind="admin", id="cli", name="freshclaim CLI")


def _echo_json(value: object) -> None:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") for v in value]
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@webhooks_app.command("create")
def webhooks_create(
    url: Annotated[str, typer.Option(help="http(s) URL the events are POSTed to.")],
    event_type: Annotated[
        list[str] | None,
        typer.Option("--event-type", help="A type or pattern (claim.*); repeat it. None: all."),
    ] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Register an endpoint; its signing secret is printed on the last line, once."""
    from claims_api.webhooks import service

    with _webhooks_session() as session:
        endpoint = service.create_endpoint(
            session,
            _cli_actor(),
            url,
            event_type or [],
            description,
            allow_private=get_settings().webhook_allow_private_addresses,
        )
    typer.echo(f"created webhook endpoint {endpoint.id} for {endpoint.url}; secret, shown once:")
    typer.echo(endpoint.secret)


@webhooks_app.command("list")
def webhooks_list() -> None:
    """Endpoints with their health, as JSON."""
    from claims_api.webhooks import service
    from claims_api.webhooks.schemas import EndpointOut

    with _webhooks_session() as session:
        rows = [
            EndpointOut.of(e, service.health(session, e.id))
            for e in service.list_endpoints(session)
        ]
    _echo_json(rows)


@webhooks_app.command("update")
def webhooks_update(
    endpoint_id: Annotated[str, typer.Argument()],
    url: Annotated[str | None, typer.Option()] = None,
    event_type: Annotated[list[str] | None, typer.Option("--event-type")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
) -> None:
    """Change an endpoint's URL, event types or description, or enable/disable it."""
    from claims_api.webhooks import service
    from claims_api.webhooks.schemas import EndpointOut, EndpointPatch

    patch = EndpointPatch(url=url, event_types=event_type, description=description, enabled=enabled)
    with _webhooks_session() as session:
        endpoint = service.update_endpoint(
            session,
            _cli_actor(),
            endpoint_id,
            patch,
            allow_private=get_settings().webhook_allow_private_addresses,
        )
        _echo_json(EndpointOut.model_validate(endpoint))


@webhooks_app.command("delete")
def webhooks_delete(endpoint_id: Annotated[str, typer.Argument()]) -> None:
    """Delete an endpoint with its delivery log."""
    from claims_api.webhooks import service

    with _webhooks_session() as session:
        service.delete_endpoint(session, _cli_actor(), endpoint_id)
    typer.echo(f"deleted webhook endpoint {endpoint_id}")


@webhooks_app.command("rotate-secret")
def webhooks_rotate_secret(endpoint_id: Annotated[str, typer.Argument()]) -> None:
    """A new secret (printed on the last line, once); the old one signs beside it for 24 h."""
    from claims_api.webhooks import service

    with _webhooks_session() as session:
        endpoint = service.rotate_secret(session, _cli_actor(), endpoint_id)
    expires = endpoint.previous_secret_expires_at
    typer.echo(f"rotated; the previous secret also signs until {expires:%Y-%m-%d %H:%M} UTC:")
    typer.echo(endpoint.secret)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    endpoint_id: Annotated[str, typer.Argument()],
    status: Annotated[str | None, typer.Option(help="pending, sending, succeeded or dead")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """An endpoint's deliveries, newest first, with their attempts, as JSON."""
    from claims_api.webhooks import service
    from claims_api.webhooks.schemas import DeliveryOut

    with _webhooks_session() as session:
        views = service.list_deliveries(session, endpoint_id, status, limit)
        rows = [DeliveryOut.of(v.delivery, v.attempts) for v in views]
    _echo_json(rows)


@webhooks_app.command("retry")
def webhooks_retry(
    endpoint_id: Annotated[str, typer.Argument()], delivery_id: Annotated[str, typer.Argument()]
) -> None:
    """Send one delivery again (the same event document; nothing is re-run)."""
    from claims_api.webhooks import service

    with _webhooks_session() as session:
        service.retry_delivery(session, _cli_actor(), endpoint_id, delivery_id)
    typer.echo(f"delivery {delivery_id} is queued to be sent again")


@webhooks_app.command("recover")
def webhooks_recover(
    endpoint_id: Annotated[str, typer.Argument()],
    since: Annotated[str, typer.Option(help="ISO 8601 time with a zone, e.g. 2026-12-01T00:00Z")],
) -> None:
    """Send again every failed or dead delivery created since a time, in each claim's order."""
    from datetime import datetime

    from claims_api.webhooks import service

    try:
        when = datetime.fromisoformat(since)
    except ValueError as exc:
        raise typer.BadParameter("not an ISO 8601 time", param_hint="--since") from exc
    with _webhooks_session() as session:
        count = service.recover(session, _cli_actor(), endpoint_id, when)
    typer.echo(f"requeued {count} deliveries of {endpoint_id}")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


if __name__ == "__main__":
    sys.exit(app())
