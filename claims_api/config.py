"""Service settings, read from ``FRESHCLAIM_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parent
BUNDLED_MODELS_DIR = PACKAGE_ROOT.parent / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRESHCLAIM_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path("var"),
        description="Folder for the SQLite file, the local photo copies and the generated "
        "signing key.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. `postgresql+psycopg://user@db:5432/freshclaim`; "
        "unset: SQLite in `home/freshclaim.db`.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Signing key of customer and reviewer tokens; unset: one generated once in "
        "`home/secret.key`. Set the same one on every replica.",
    )
    model_dir: Path = Field(
        default=BUNDLED_MODELS_DIR,
        description="Folder of models; without model_path the newest `*.onnx` file name in it "
        "is served.",
    )
    model_path: Path | None = Field(
        default=None, description="The ONNX classifier; unset: the newest in model_dir."
    )
    model_threads: int = Field(
        default=1,
        ge=1,
        description="onnxruntime intra-op threads per session; requests already run in "
        "parallel, so keep 1.",
    )

    photo_storage: Literal["local", "s3"] = Field(
        default="local",
        description="Where the re-encoded photo copies live: `local` (`home/photos`) or `s3` "
        "(needs s3_bucket and the `s3` extra).",
    )
    s3_bucket: str | None = Field(
        default=None, description="The bucket, when photo_storage is `s3`."
    )
    s3_prefix: str = Field(
        default="photos/", description="Prefix of the photo objects' keys in the bucket."
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="An S3-compatible endpoint (MinIO, a cloud's S3 API); unset: AWS.",
    )

    photo_concurrency: int = Field(
        default=0,
        ge=0,
        description="Photos decoded at once per process (0: one per CPU core; `serve --workers "
        "N` gives each worker cores/N). More gains no speed on CPU-bound work and costs memory "
        "(a decoded multi-megapixel image each) under a burst of uploads.",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        description="Byte limit per photo: a larger body is answered 413 `file_too_large` while "
        "it arrives.",
    )
    upload_body_seconds: float = Field(
        default=120.0,
        gt=0,
        description="An upload whose whole body has not arrived within this long is answered 408 "
        "`upload_timeout` (a 12-MP photo takes ~30 s at 1 Mbit/s): a body sent a byte at a time "
        "would otherwise hold its share of upload_bytes_in_flight for ever.",
    )
    upload_bytes_in_flight: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="Bytes of photo uploads one process holds in memory at once (0: no bound). "
        "An upload reserves its declared size (max_upload_bytes when chunked) before its body "
        "is read; those that do not fit wait in arrival order for upload_queue_seconds, then "
        "get 503 `server_busy` with Retry-After.",
    )
    upload_queue_seconds: float = Field(
        default=10.0, gt=0, description="How long an upload waits for upload_bytes_in_flight."
    )
    upload_idle_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="An upload whose body stops arriving for this long is answered 408 "
        "`upload_timeout` and its connection freed (a phone that lost its signal, or a client "
        "holding connections open on purpose).",
    )
    max_image_pixels: int = Field(
        default=50_000_000,
        description="Pixel limit per photo, checked on the header before decoding (413 "
        "`image_too_large`).",
    )
    stored_photo_max_side: int = Field(
        default=2048,
        description="Long side of the re-encoded copy reviewers see; the quality gate judges "
        "blur and detail at this size (docs/performance.md: the reviewer copy's size).",
    )
    max_photos_per_claim: int = Field(
        default=6, description="Photos one claim may hold, those added later included."
    )

    customer_token_ttl_seconds: int = Field(
        default=3600, description="Lifetime of a customer token minted by the shop backend."
    )
    reviewer_token_ttl_seconds: int = Field(
        default=12 * 3600,
        description="Lifetime of a reviewer token (`POST /v1/auth/login`) and of a workbench "
        "session.",
    )
    login_failures_per_user: int = Field(
        default=10,
        ge=0,
        description="Failed logins to one username within login_failure_window_seconds before "
        "that username is refused with 429 `too_many_login_attempts`, right password or not, "
        "until the window ends (0: no limit). A login that succeeds clears the count.",
    )
    login_failures_per_address: int = Field(
        default=50,
        ge=0,
        description="The same for all usernames tried from one client address (0: no limit). "
        "Behind a proxy, set uvicorn's FORWARDED_ALLOW_IPS to its address so the client's is "
        "used.",
    )
    login_failure_window_seconds: int = Field(
        default=900, gt=0, description="The window in which failed logins are counted."
    )
    photo_uploads_per_minute: float = Field(
        default=20.0,
        ge=0,
        description="Photo uploads one credential may make a minute, sustained (0: no limit); "
        "past its burst a credential is answered 429 `rate_limited` with Retry-After, before "
        "the photo is read. A customer retaking photos for a claim stays far below it; a "
        "script does not.",
    )
    photo_upload_burst: int = Field(
        default=30,
        ge=1,
        description="Photo uploads a credential may make at once before photo_uploads_per_minute "
        "applies (the token bucket's size).",
    )
    claims_per_minute: float = Field(
        default=10.0,
        ge=0,
        description="Claims one credential may submit a minute, sustained (0: no limit); past "
        "claim_burst, 429 `rate_limited` with Retry-After.",
    )
    claim_burst: int = Field(
        default=10, ge=1, description="Claims a credential may submit at once."
    )
    photos_per_day: int = Field(
        default=200,
        ge=0,
        description="Photos one customer may store in any 24 hours (0: no limit); past it, "
        "uploads are answered 429 `daily_photo_limit` with Retry-After.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (`redis://host:6379/0`) for the rate limits' buckets; unset: they "
        "live in the database (`rate_buckets`). Either way every replica shares them.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Log lines of `serve` and `worker`: one JSON object a line (with the request "
        "id) or plain text for a terminal.",
    )
    review_lease_seconds: int = Field(
        default=300,
        description="How long a reviewer's lease on a claim lasts without a heartbeat; an "
        "expired lease returns the claim to the queue.",
    )
    decision_budget_seconds: float = Field(
        default=2.0, description="Time allowed to score a photo; past it the photo stays unscored."
    )

    policy_file: Path | None = Field(
        default=None,
        description="JSON auto-approval policy replacing the built-in one (its fields: "
        "docs/configuration.md, the policy file).",
    )
    webhook_allow_private_addresses: bool = Field(
        default=False,
        description="Let webhook endpoints point at private, loopback or link-local addresses "
        "(a receiver on the same host or network). Off by default: an endpoint URL is an "
        "address the service will send requests to (SSRF).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long one webhook POST may take, connecting included, before the "
        "attempt counts as failed.",
    )
    webhook_concurrency: int = Field(
        default=8,
        ge=1,
        description="Webhook POSTs one relay sends at once (a batch's POSTs run side by side; "
        "the next batch starts when the slowest has answered or timed out).",
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS server (for example nats://127.0.0.1:4222): when set, the relay also "
        "publishes every event to the JetStream stream FRESHCLAIM, subject "
        "freshclaim.<aggregate>.<type>, with Nats-Msg-Id = the event id.",
    )
    background_workers: bool = Field(
        default=True,
        description="Run the outbox relay and the lease sweeper in each `serve` process; "
        "`false` where `freshclaim worker` runs them beside the replicas.",
    )
    locale: str = Field(
        default="en",
        description="Language of the upload's problem sentences when the request has no "
        "supported Accept-Language (`en` or `zh`).",
    )

    @field_validator("home", "model_dir", "model_path", "policy_file")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        """Resolved once, against the folder the process started in, so that every later use
        (the CLI, each server worker, a child process given ``str(settings.home)``) names the
        same files whatever its working directory is by then."""
        return path.expanduser().resolve() if path is not None else None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'freshclaim.db').resolve()}"

    @property
    def photo_dir(self) -> Path:
        return self.home / "photos"

    def resolved_secret_key(self) -> str:
        """The configured key, or one kept in ``home/secret.key`` for the embedded default."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def resolved_model_path(self) -> Path | None:
        if self.model_path:
            return self.model_path
        candidates = sorted(self.model_dir.glob("*.onnx"))
        return candidates[-1] if candidates else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
