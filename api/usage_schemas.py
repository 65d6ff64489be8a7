"""Wire shapes of ingestion, the rate card, billing periods, invoices and usage summaries."""

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from api import bounded
from api.bounded import Currency, Filters, Id, Name, OptionalId, Properties, PropertyKey, Timestamp, without_pattern
from domain.bounds import PERIOD_COUNT_MAX, PROPERTIES_MAX_ENTRIES, TIERS_MAX_ENTRIES
from domain.periods import PeriodUnit
from domain.pricing import Aggregation, BillingModel, TierMode

Decimalish = str | int | float


class IngestEventRequest(msgspec.Struct, forbid_unknown_fields=True):
    event_name: Id
    external_customer_id: Id
    customer_id: OptionalId | None = None
    event_id: Id | None = None
    timestamp: Timestamp | None = None
    source: Name | None = None
    properties: Properties = {}


class UncheckedIngestEvent(IngestEventRequest, forbid_unknown_fields=True):
    """An event of a bulk decoded with every bound but the text fields' control-character pattern, which
    api/events.py checks for all of them at once (msgspec runs a regular expression per field: most of a bulk
    event's decoding); any event it refuses or finds is decoded again as IngestEventRequest, which says why."""

    event_name: without_pattern(Id)  # type: ignore[valid-type]
    external_customer_id: without_pattern(Id)  # type: ignore[valid-type]
    customer_id: without_pattern(OptionalId) | None = None  # type: ignore[valid-type]
    event_id: without_pattern(Id) | None = None  # type: ignore[valid-type]
    timestamp: Timestamp | None = None
    source: without_pattern(Name) | None = None  # type: ignore[valid-type]
    properties: Annotated[dict[without_pattern(PropertyKey), bounded.Property],  # type: ignore[valid-type]
                          msgspec.Meta(max_length=PROPERTIES_MAX_ENTRIES)] = {}


class BulkIngestRequest(msgspec.Struct, forbid_unknown_fields=True):
    events: list[msgspec.Raw]


class EventAccepted(msgspec.Struct):
    message: str
    event_id: str


class EventsAccepted(msgspec.Struct):
    """Every value is a string: Flexprice SDKs read this reply as a map of strings."""

    message: str
    accepted: str
    duplicates: str


class AggregationWire(msgspec.Struct, forbid_unknown_fields=True):
    type: Aggregation
    field: PropertyKey | None = None


class TransformQuantity(msgspec.Struct, forbid_unknown_fields=True):
    divide_by: Decimalish
    round: Literal["up", "down"] = "up"


class TierWire(msgspec.Struct, forbid_unknown_fields=True):
    unit_amount: Decimalish
    up_to: Decimalish | None = None
    flat_amount: Decimalish | None = None


class CreatePriceRequest(msgspec.Struct, forbid_unknown_fields=True):
    event_name: Id
    currency: Currency
    aggregation: AggregationWire
    billing_model: BillingModel
    amount: Decimalish | None = None
    filters: Filters = {}
    transform_quantity: TransformQuantity | None = None
    tier_mode: TierMode = "SLAB"
    tiers: Annotated[list[TierWire], msgspec.Meta(max_length=TIERS_MAX_ENTRIES)] = []
    effective_from: Timestamp | None = None
    lookup_key: OptionalId | None = None


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


class PeriodWire(msgspec.Struct, forbid_unknown_fields=True):
    unit: PeriodUnit
    count: Annotated[int, msgspec.Meta(ge=1, le=PERIOD_COUNT_MAX)] = 1


class BillingRequest(msgspec.Struct, forbid_unknown_fields=True):
    anchor: Timestamp
    period: PeriodWire


class BillingResponse(msgspec.Struct):
    customer_id: str
    anchor: datetime
    period: PeriodWire


class PaymentRequest(msgspec.Struct, forbid_unknown_fields=True):
    amount: Decimalish | None = None
    reference: Name | None = None


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
