"""Shopify order JSON (GraphQL node or REST object) → canonical `Order`. Pure functions, no I/O.

Both APIs map to the same row — same external id (the numeric order id), same money text — so
switching `api` between graphql and rest never duplicates or rewrites an order.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from kpisync.core.errors import MalformedPayload
from kpisync.core.models import Order


def money(value: Any) -> str:
    """Decimal text with at least two decimals: "199.0" (GraphQL) and "199.00" (REST) agree."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise MalformedPayload(f"shopify: {value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise MalformedPayload(f"shopify: {value!r} is not a decimal amount")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


def graphql_order(node: dict[str, Any]) -> Order:
    customer = node.get("customer") or {}
    total = (node.get("totalPriceSet") or {}).get("shopMoney") or {}
    current = (node.get("currentTotalPriceSet") or {}).get("shopMoney") or {}
    status = node.get("displayFinancialStatus")
    return Order(
        external_id=node["legacyResourceId"],
        platform="shopify",
        customer_id=customer.get("legacyResourceId"),
        customer_email=node.get("email") or customer.get("email") or None,
        customer_phone=node.get("phone") or customer.get("phone") or (node.get("billingAddress") or {}).get("phone") or None,
        created_at=node["createdAt"],
        updated_at=node.get("updatedAt"),
        total=money(total.get("amount")),
        net_total=money(current["amount"]) if current.get("amount") is not None else None,
        currency=total.get("currencyCode") or node["currencyCode"],
        status=status.lower() if isinstance(status, str) else None,
        is_test=bool(node.get("test")),
        cancelled_at=node.get("cancelledAt"),
        raw=node,
    )


def rest_order(item: dict[str, Any]) -> Order:
    customer = item.get("customer") or {}
    current = item.get("current_total_price")
    return Order(
        external_id=item["id"],
        platform="shopify",
        customer_id=customer.get("id"),
        customer_email=item.get("email") or item.get("contact_email") or customer.get("email") or None,
        customer_phone=item.get("phone") or customer.get("phone") or (item.get("billing_address") or {}).get("phone") or None,
        created_at=item["created_at"],
        updated_at=item.get("updated_at"),
        total=money(item.get("total_price")),
        net_total=money(current) if current is not None else None,
        currency=item["currency"],
        status=item.get("financial_status"),
        is_test=bool(item.get("test")),
        cancelled_at=item.get("cancelled_at"),
        raw=item,
    )
