from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["shop", "admin", "customer", "reviewer", "system"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a shop-backend or admin API key, a customer, a reviewer account
    (``admin`` marks a reviewer with the admin role) or the system itself."""

    kind: Kind
    id: str
    name: str = ""
    admin: bool = False


SYSTEM = Principal(kind="system", id="policy", name="FreshClaim policy")
