"""API keys (hashed), signed short-lived tokens for customers and reviewers, passwords."""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from claims_api.auth import throttle
from claims_api.auth.errors import InvalidRole, UsernameTaken, WeakPassword
from claims_api.auth.models import ApiKey, Reviewer
from claims_api.auth.principal import Principal
from claims_api.auth.throttle import LoginLimits
from claims_api.db import Database, new_id, utcnow

KEY_ROLES = ("shop", "admin")
REVIEWER_ROLES = ("reviewer", "admin")
_ALGORITHM = "HS256"
_passwords = PasswordHasher()
# Argon2 with these defaults (RFC 9106's second profile) needs 64 MiB per password and a
# noticeable fraction of a second: a burst of logins, one per threadpool thread, would hold
# gigabytes. Two at a time bound it; the others queue.
_PASSWORD_WORK = threading.BoundedSemaphore(2)


def _hash_password(password: str) -> str:
    with _PASSWORD_WORK:
        return _passwords.hash(password)


def _password_matches(password_hash: str | None, password: str) -> bool:
    """The Argon2 check; the caller holds a ``_PASSWORD_WORK`` slot."""
    if password_hash is None:
        _passwords.hash(password)  # same work either way: no user-enumeration by timing
        return False
    try:
        return _passwords.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, role: str, name: str = "") -> tuple[ApiKey, str]:
    """Returns the stored row and the plaintext key, which is never stored."""
    if role not in KEY_ROLES:
        raise ValueError(f"role must be one of {KEY_ROLES}")
    plaintext = f"fck_{role}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=new_id("key"), role=role, name=name, prefix=plaintext[:12], key_hash=_digest(plaintext)
    )
    session.add(key)
    return key, plaintext


def principal_for_api_key(session: Session, plaintext: str) -> Principal | None:
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(plaintext)))
    if key is None or key.revoked_at is not None:
        return None
    return Principal(kind="admin" if key.role == "admin" else "shop", id=key.id, name=key.name)


def issue_token(secret: str, principal: Principal, ttl_seconds: int) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_seconds)
    claims = {
        "sub": principal.id,
        "kind": principal.kind,
        "name": principal.name,
        "admin": principal.admin,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), expires


def principal_for_token(secret: str, token: str) -> Principal | None:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    if claims.get("kind") not in ("customer", "reviewer"):
        return None
    return Principal(
        kind=claims["kind"],
        id=claims["sub"],
        name=claims.get("name", ""),
        admin=bool(claims.get("admin")),
    )


def create_reviewer(
    session: Session, username: str, password: str, role: str = "reviewer"
) -> Reviewer:
    if role not in REVIEWER_ROLES:
        raise InvalidRole(f"role must be one of {REVIEWER_ROLES}")
    if len(password) < 8:
        raise WeakPassword()
    reviewer = Reviewer(
        id=new_id("rev"),
        username=username,
        password_hash=_hash_password(password),
        role=role,
        created_at=utcnow(),
    )
    session.add(reviewer)
    try:
        session.flush()
    except IntegrityError as exc:
        raise UsernameTaken(f"The username {username!r} is taken.") from exc
    return reviewer


@dataclass(frozen=True)
class VerifiedReviewer:
    """A reviewer whose password has just been checked."""

    id: str
    username: str
    role: str


class LoginRefused(Exception):
    """Too many recent failures for this username or address: try again in ``retry_after``
    seconds. The password was not checked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"login refused for {retry_after} s")
        self.retry_after = retry_after


def authenticate_reviewer(
    db: Database,
    username: str,
    password: str,
    *,
    address: str | None = None,
    limits: LoginLimits | None = None,
) -> VerifiedReviewer | None:
    """Checks the password against the reviewer's row, unless too many logins have failed
    lately for the username or the address (:mod:`claims_api.auth.throttle`): then raises
    LoginRefused. Reads run in transactions of their own and the Argon2 work after they have
    ended, so it holds no database connection, and on SQLite no write lock."""
    keys = throttle.login_keys(limits, username, address) if limits else []
    window = limits.window if limits else timedelta(0)
    if keys:
        _read_login(db, None, keys, window)  # a refused login does not queue for a slot
    with _PASSWORD_WORK:
        # read again in the slot: logins that queued for it before a limit was reached stop
        # here, so a burst overshoots a limit by at most the slots, not the queue
        row, failures = _read_login(db, username, keys, window)
        matched = _password_matches(row.password_hash if row else None, password)
    if row is None or not matched:
        if keys:
            with db.session() as session:
                throttle.record_failure(session, keys, window, utcnow())
        return None
    if throttle.user_key(username) in failures:
        with db.session() as session:
            throttle.clear_user(session, username)
    return VerifiedReviewer(id=row.id, username=row.username, role=row.role)


def _read_login(
    db: Database, username: str | None, keys: list[throttle.LoginKey], window: timedelta
) -> tuple[Row | None, dict[str, tuple[int, datetime]]]:
    """The active reviewer's row (when a username is given) and the keys' recent failures, in
    one read transaction. Raises LoginRefused."""
    now = utcnow()
    row = None
    with db.read_session() as session:
        failures = throttle.recent_failures(session, keys, window, now)
        if username is not None:
            row = session.execute(
                select(Reviewer.id, Reviewer.username, Reviewer.role, Reviewer.password_hash).where(
                    Reviewer.username == username, Reviewer.active.is_(True)
                )
            ).one_or_none()
    wait = throttle.seconds_refused(failures, keys, window, now)
    if wait is not None:
        raise LoginRefused(wait)
    return row, failures


def reviewer_principal(reviewer: Reviewer | VerifiedReviewer) -> Principal:
    return Principal(
        kind="reviewer", id=reviewer.id, name=reviewer.username, admin=reviewer.role == "admin"
    )
