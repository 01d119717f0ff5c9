from __future__ import annotations

from fastapi import APIRouter, Path, Response

from claims_api.deps import DbSession, OrderReader, ReadSession, ShopPrincipal
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, document
from claims_api.orders import service
from claims_api.orders.errors import LineHasClaims, OrderCustomerMismatch, OrderNotFound
from claims_api.orders.models import Order
from claims_api.orders.schemas import OrderIn, OrderOut

router = APIRouter(prefix="/v1/orders", tags=["orders"])
OrderId = Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")


def _out(order: Order) -> OrderOut:
    return OrderOut.model_validate(order, from_attributes=True)


@router.put(
    "/{order_id}",
    response_model=OrderOut,
    summary="Create or replace an order (idempotent)",
    responses=document(AUTHENTICATED, JSON_BODY, WRITES, OrderCustomerMismatch, LineHasClaims),
)
def put_order(
    body: OrderIn,
    session: DbSession,
    shop: ShopPrincipal,
    response: Response,
    order_id: str = OrderId,
) -> OrderOut:
    order, created = service.upsert_order(session, shop, order_id, body)
    response.status_code = 201 if created else 200
    return _out(order)


@router.get(
    "/{order_id}", response_model=OrderOut, responses=document(AUTHENTICATED, INPUT, OrderNotFound)
)
def get_order(session: ReadSession, viewer: OrderReader, order_id: str = OrderId) -> OrderOut:
    """The shop reads any order; a customer's token reads that customer's own orders (any
    other is reported like one that does not exist)."""
    return _out(service.get_visible_order(session, viewer, order_id))
