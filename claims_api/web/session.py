"""Browser sessions for the workbench: a signed JWT in an HttpOnly, SameSite=Strict cookie,
carrying a per-session CSRF token (synchroniser token: every form and fetch sends it back).

The signing key is derived from the service secret with a purpose label, so an API bearer
token can never pass as a session cookie and vice versa."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy.orm import Session

from claims_api.auth.models import Reviewer
from claims_api.auth.principal import Principal
from claims_api.auth.service import reviewer_principal

SESSION_COOKIE = "fc_session"
LOGIN_CSRF_COOKIE = "fc_login_csrf"
LANG_COOKIE = "fc_lang"
_ALGORITHM = "HS256"
_TYPE = "web_session"


@dataclass(frozen=True)
class WebUser:
    """The signed-in reviewer as the pages see them."""

    principal: Principal
    username: str
    role: str
    csrf: str

    @property
    def id(self) -> str:
        return self.principal.id

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _key(secret: str) -> str:
    return hmac.new(secret.encode(), b"freshclaim-web-session-v1", hashlib.sha256).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def encode_session(secret: str, reviewer: Reviewer, ttl_seconds: int) -> str:
    now = datetime.now(UTC)
    claims = {
        "typ": _TYPE,
        "sub": reviewer.id,
        "csrf": new_csrf_token(),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, _key(secret), algorithm=_ALGORITHM)


def decode_session(secret: str, token: str | None) -> dict | None:
    if not token:
        return None
    try:
        claims = jwt.decode(
            token, _key(secret), algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != _TYPE or not isinstance(claims.get("csrf"), str):
        return None
    return claims


def load_user(session: Session, claims: dict) -> WebUser | None:
    """The reviewer behind a valid cookie, re-read so a deactivated account is out at once."""
    reviewer = session.get(Reviewer, claims["sub"])
    if reviewer is None or not reviewer.active:
        return None
    return WebUser(
        principal=reviewer_principal(reviewer),
        username=reviewer.username,
        role=reviewer.role,
        csrf=claims["csrf"],
    )


def csrf_matches(expected: str | None, sent: str | None) -> bool:
    if not expected or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())
