"""A price version and its tiers: the rate card's immutable, effective-dated records (what domain/pricing.py prices).

Kept apart from the pricing functions so that domain/pricing.py can be compiled with mypyc, which would drop these
classes' keywords (frozen, kw_only): msgspec.Struct classes with class keywords stay in pure modules.
"""

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from domain.money import ZERO

Aggregation = Literal["COUNT", "SUM"]
BillingModel = Literal["FLAT_FEE", "PACKAGE", "TIERED"]
TierMode = Literal["SLAB", "VOLUME"]


class Tier(msgspec.Struct, frozen=True, kw_only=True):
    """Covers quantities above the previous tier's `up_to` up to and including this one (None: no limit)."""

    up_to: Decimal | None
    unit_amount: Decimal
    flat_amount: Decimal = ZERO


class PriceVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One immutable version of a price; a later version with the same `lookup_key` supersedes it from its date."""

    id: str
    lookup_key: str
    event_name: str
    currency: str
    aggregation: Aggregation
    field: str | None = None
    filters: dict[str, tuple[str, ...]] = {}
    billing_model: BillingModel
    amount: Decimal = ZERO
    package_size: Decimal = Decimal(1)
    round_up: bool = True
    tier_mode: TierMode = "SLAB"
    tiers: tuple[Tier, ...] = ()
    effective_from: datetime
    created_at: datetime
