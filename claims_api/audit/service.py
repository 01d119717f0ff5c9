from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from claims_api.audit.models import AuditEntry
from claims_api.auth.principal import Principal
from claims_api.db import utcnow


def record(
    session: Session,
    actor: Principal,
    entity_type: str,
    entity_id: str,
    action: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
    **details: Any,
) -> AuditEntry:
    """``at``: when it happened (default: now)."""
    entry = AuditEntry(
        at=at or utcnow(),
        actor_type=actor.kind,
        actor_id=actor.id,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        before=before,
        after=after,
        details=details,
    )
    session.add(entry)
    return entry
