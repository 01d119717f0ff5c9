"""Browser sessions for the workbench: a random token in an HttpOnly, SameSite=Strict cookie,
backed by a ``web_sessions`` row (stored as its SHA-256) that carries the session's CSRF token
(synchroniser token: every form and fetch sends it back). Logging out revokes the row, and a
deactivated reviewer is out at the next request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from claims_api.auth.models import Reviewer
from claims_api.auth.principal import Principal
from claims_api.auth.service import reviewer_principal
from claims_api.db import utcnow
from claims_api.web.models import WebSession

SESSION_COOKIE = "fc_session"
LOGIN_CSRF_COOKIE = "fc_login_csrf"
LANG_COOKIE = "fc_lang"
_MAX_TOKEN = 200


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


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, reviewer_id: str, ttl_seconds: int) -> str:
    """Records a new session and returns the cookie token (never stored in clear)."""
    now = utcnow()
    session.execute(
        delete(WebSession).where(WebSession.reviewer_id == reviewer_id, WebSession.expires_at < now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id=_digest(token),
            reviewer_id=reviewer_id,
            csrf=new_csrf_token(),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    return token


def load_user(session: Session, token: str | None) -> WebUser | None:
    if not token or len(token) > _MAX_TOKEN:
        return None
    row = session.execute(
        select(WebSession, Reviewer)
        .join(Reviewer, Reviewer.id == WebSession.reviewer_id)
        .where(
            WebSession.id == _digest(token),
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > utcnow(),
        )
    ).first()
    if row is None or not row.Reviewer.active:
        return None
    web_session, reviewer = row
    return WebUser(
        principal=reviewer_principal(reviewer),
        username=reviewer.username,
        role=reviewer.role,
        csrf=web_session.csrf,
    )


def end_session(session: Session, token: str | None) -> None:
    if not token or len(token) > _MAX_TOKEN:
        return
    row = session.get(WebSession, _digest(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def csrf_matches(expected: str | None, sent: str | None) -> bool:
    if not expected or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())
