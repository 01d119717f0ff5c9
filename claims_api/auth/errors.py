"""The errors of sign-in and reviewer accounts."""

from __future__ import annotations

from claims_api.errors import NamedError


class InvalidCredentials(NamedError):
    status, code, message = 401, "invalid_credentials", "Wrong username or password."


class TooManyLoginAttempts(NamedError):
    """Too many failed logins for a username or a client address (auth.throttle)."""

    status, code = 429, "too_many_login_attempts"
    message = "Too many failed logins; try again in 840 s."
    retry_after = True

    @classmethod
    def retry_in(cls, seconds: int) -> TooManyLoginAttempts:
        return cls(
            f"Too many failed logins; try again in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )


class InvalidRole(NamedError):
    status, code, message = 422, "invalid_role", "role must be one of ('reviewer', 'admin')"


class WeakPassword(NamedError):
    status, code, message = 422, "weak_password", "A password needs at least 8 characters."


class UsernameTaken(NamedError):
    status, code, message = 409, "username_taken", "The username 'ana' is taken."
