"""The errors of audit reviews."""

from __future__ import annotations

from claims_api.errors import NamedError


class AuditNotFound(NamedError):
    status, code = 404, "audit_not_found"
    message = "This claim is not queued for an audit review."


class AuditLeaseNotHeld(NamedError):
    status, code = 409, "audit_lease_not_held"
    message = "Lease this audit review before giving a verdict; another reviewer may hold it."


class AuditAlreadyDone(NamedError):
    status, code = 409, "audit_already_done"
    message = "This audit review already has a verdict."
