"""Which URLs an endpoint may have. A webhook makes the service send requests to an address an
admin typed: without these checks it could be pointed at the database, the cloud metadata
service or anything else only reachable from inside (SSRF)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from claims_api.webhooks.errors import InvalidWebhookUrl

MAX_URL_LENGTH = 2000


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidWebhookUrl(f"The webhook host {host!r} does not resolve.") from exc
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not address.is_global or address.is_multicast


def validate_url(url: str, *, allow_private: bool) -> str:
    """The URL as given when it is acceptable; 422 ``invalid_webhook_url`` otherwise. The host
    is resolved here, so a name that points inside is refused as its address would be."""
    problem = None
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH:
        problem = f"longer than {MAX_URL_LENGTH} characters"
    elif parts.scheme not in ("http", "https"):
        problem = "only http and https URLs are allowed"
    elif parts.username is not None or parts.password is not None:
        problem = "credentials do not belong in the URL; use the signature to authenticate"
    elif not parts.hostname:
        problem = "the URL has no host"
    elif parts.fragment:
        problem = "a fragment is never sent; remove it"
    if problem:
        raise InvalidWebhookUrl(f"Invalid webhook URL: {problem}.")
    if not allow_private and any(_is_internal(a) for a in _addresses(parts.hostname)):
        raise InvalidWebhookUrl(
            "Invalid webhook URL: it points to a private, loopback or reserved address "
            "(set FRESHCLAIM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true to allow that).",
        )
    return url
