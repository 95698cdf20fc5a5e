"""Claid's price for a generation: the one place credits are computed (the store keeps them, see backdrop.store)."""

from __future__ import annotations

from decimal import Decimal

CREDITS_PER_IMAGE = Decimal(2)
AUTOPROMPT_CREDITS = Decimal("0.5")


def credits_for(images: int, autoprompt: bool) -> Decimal:
    """Claid's price: 2 credits per image returned, +0.5 per request whose prompt Claid wrote."""
    if images < 0:
        raise ValueError("images cannot be negative")
    return CREDITS_PER_IMAGE * images + (AUTOPROMPT_CREDITS if autoprompt else Decimal(0))


def as_decimal(value: float | Decimal) -> Decimal:
    """A float of credits as the exact Decimal DynamoDB stores (via its shortest repr: 0.1 stays 0.1)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))
