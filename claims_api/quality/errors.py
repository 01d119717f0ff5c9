"""The errors of quality incidents."""

from __future__ import annotations

from claims_api.errors import NamedError


class IncidentNotFound(NamedError):
    status, code, message = 404, "incident_not_found", "No such quality incident."


class IncidentTransitionNotAllowed(NamedError):
    status, code, message = (
        409,
        "incident_transition_not_allowed",
        "Incident qin_1 is resolved and cannot be acknowledged.",
    )
