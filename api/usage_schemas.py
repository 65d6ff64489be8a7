"""Wire shapes of ingestion, the rate card, billing periods, invoices and usage summaries."""

from datetime import datetime
from typing import Literal

import msgspec

from domain.periods import PeriodUnit
from domain.pricing import Aggregation, BillingModel, TierMode

Decimalish = str | int | float
Property = str | int | float


class IngestEventRequest(msgspec.Struct):
    event_name: str
    external_customer_id: str
    customer_id: str | None = None
    event_id: str | None = None
    timestamp: str | None = None
    source: str | None = None
    properties: dict[str, Property] = {}


class BulkIngestRequest(msgspec.Struct):
    events: list[msgspec.Raw]


class EventAccepted(msgspec.Struct):
    message: str
    event_id: str


class EventsAccepted(msgspec.Struct):
    """Every value is a string: Flexprice SDKs read this reply as a map of strings."""

    message: str
    accepted: str
    duplicates: str


class AggregationWire(msgspec.Struct):
    type: Aggregation
    field: str | None = None


class TransformQuantity(msgspec.Struct):
    divide_by: Decimalish
    round: Literal["up", "down"] = "up"


class TierWire(msgspec.Struct):
    unit_amount: Decimalish
    up_to: Decimalish | None = None
    flat_amount: Decimalish | None = None


class CreatePriceRequest(msgspec.Struct):
    event_name: str
    currency: str
    aggregation: AggregationWire
    billing_model: BillingModel
    amount: Decimalish | None = None
    filters: dict[str, list[str]] = {}
    transform_quantity: TransformQuantity | None = None
    tier_mode: TierMode = "SLAB"
    tiers: list[TierWire] = []
    effective_from: str | None = None
    lookup_key: str | None = None


class TierOut(msgspec.Struct):
    up_to: str | None
    unit_amount: str
    flat_amount: str


class PriceResponse(msgspec.Struct):
    id: str
    lookup_key: str
    event_name: str
    currency: str
    aggregation: AggregationWire
    billing_model: BillingModel
    amount: str
    filters: dict[str, list[str]]
    transform_quantity: TransformQuantity | None
    tier_mode: TierMode
    tiers: list[TierOut]
    effective_from: datetime
    created_at: datetime


class PriceList(msgspec.Struct):
    items: list[PriceResponse]


class PeriodWire(msgspec.Struct):
    unit: PeriodUnit
    count: int = 1


class BillingRequest(msgspec.Struct):
    anchor: str
    period: PeriodWire


class BillingResponse(msgspec.Struct):
    customer_id: str
    anchor: datetime
    period: PeriodWire


class PaymentRequest(msgspec.Struct):
    amount: Decimalish | None = None
    reference: str | None = None


class InvoiceResponse(msgspec.Struct):
    id: str
    customer_id: str
    currency: str
    period_start: datetime
    period_end: datetime
    amount: str
    paid_from_wallet: str
    amount_unpaid: str
    status: Literal["paid", "unpaid"]
    late_events: int


class InvoiceList(msgspec.Struct):
    items: list[InvoiceResponse]


class UsageLine(msgspec.Struct):
    price_id: str
    lookup_key: str
    event_name: str
    currency: str
    quantity: str
    amount: str
    events: int


class UsagePeriod(msgspec.Struct):
    start: datetime
    end: datetime
    events: int
    late_events: int
    unpriced_events: int
    lines: list[UsageLine]
    totals: dict[str, str]


class UsageSummary(msgspec.Struct):
    customer_id: str
    usage_events: int
    periods: list[UsagePeriod]
