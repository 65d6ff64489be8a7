"""The facts of a customer account: one frozen, tagged msgspec Struct per event, and their union."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from domain.periods import PeriodUnit
from domain.pricing import PriceVersion
from domain.settings import AlertSettings, AutoTopup, PriceType

WalletType = Literal["PRE_PAID", "POST_PAID"]
GrantReason = Literal[
    "FREE_CREDIT_GRANT",
    "SUBSCRIPTION_CREDIT_GRANT",
    "PURCHASED_CREDIT_DIRECT",
    "PURCHASED_CREDIT_INVOICED",
    "PURCHASED_CREDIT_BONUS",
    "CREDIT_NOTE",
    "INVOICE_VOID_REFUND",
]
DebitReason = Literal["CREDIT_ADJUSTMENT", "MANUAL_BALANCE_DEBIT", "WALLET_TERMINATION"]


class Event(msgspec.Struct, frozen=True, tag_field="type", omit_defaults=True, array_like=True):
    """Every event has a unique id (the dedup key) and the instant it was accepted.

    Encoded as an array in field order: the tag, `id`, `at` (not keyword-only, so they stay first), then the
    event's own fields as declared (domain/codec.py). A new field goes last, with a default."""

    id: str
    at: datetime


class WalletCreated(Event, frozen=True, kw_only=True, tag="wallet_created"):
    """A new wallet; its initial credits (a FREE_CREDIT_GRANT lot) belong to the same fact."""

    wallet_id: str
    tenant_id: str
    environment_id: str
    customer_id: str
    currency: str
    wallet_type: WalletType
    conversion_rate: Decimal
    topup_conversion_rate: Decimal
    allowed_price_types: tuple[PriceType, ...] | None = None
    alert_settings: AlertSettings | None = None
    auto_topup: AutoTopup | None = None
    name: str = ""
    description: str = ""
    metadata: dict[str, str] = {}
    created_by: str = ""
    initial_credits: Decimal = Decimal(0)
    initial_transaction_id: str = ""
    initial_credits_expire_at: datetime | None = None


class WalletUpdated(Event, frozen=True, kw_only=True, tag="wallet_updated"):
    """Only the fields that are not None change."""

    wallet_id: str
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    alert_settings: AlertSettings | None = None
    auto_topup: AutoTopup | None = None
    allowed_price_types: tuple[PriceType, ...] | None = None
    updated_by: str = ""


class WalletTerminated(Event, frozen=True, kw_only=True, tag="wallet_terminated"):
    """Debits every available credit (WALLET_TERMINATION) and closes the wallet."""

    wallet_id: str
    transaction_id: str
    updated_by: str = ""


class WalletFrozen(Event, frozen=True, kw_only=True, tag="wallet_frozen"):
    wallet_id: str
    updated_by: str = ""


class WalletUnfrozen(Event, frozen=True, kw_only=True, tag="wallet_unfrozen"):
    wallet_id: str
    updated_by: str = ""


class CreditsGranted(Event, frozen=True, kw_only=True, tag="credits_granted"):
    """One credit lot."""

    wallet_id: str
    transaction_id: str
    credits: Decimal
    reason: GrantReason
    priority: int | None = None
    expires_at: datetime | None = None
    idempotency_key: str | None = None
    description: str = ""
    metadata: dict[str, str] = {}
    created_by: str = ""
    pending: bool = False


class CreditsPaid(Event, frozen=True, kw_only=True, tag="credits_paid"):
    """A pending (invoiced) lot was paid: its credits become available."""

    wallet_id: str
    transaction_id: str


class CreditsDebited(Event, frozen=True, kw_only=True, tag="credits_debited"):
    """Consumes lots in lot order; what no lot can pay is recorded as the entry's shortfall."""

    wallet_id: str
    transaction_id: str
    credits: Decimal
    reason: DebitReason
    idempotency_key: str | None = None
    description: str = ""
    metadata: dict[str, str] = {}
    created_by: str = ""


class CreditsExpired(Event, frozen=True, kw_only=True, tag="credits_expired"):
    """A lot's remaining credits at its expiry leave the wallet."""

    wallet_id: str
    lot_id: str
    transaction_id: str


class UsageRecorded(Event, frozen=True, kw_only=True, tag="usage_recorded"):
    """A raw usage event as the producer sent it; `id` is its event_id.

    `prices` are the rate card's versions for its event name as they stood when it was appended: the store
    attaches them atomically with the append, so a replay prices it exactly as the first fold did.
    """

    event_name: str
    external_customer_id: str
    timestamp: datetime
    properties: dict[str, str | int | float] = {}
    source: str = ""
    prices: tuple[PriceVersion, ...] = ()


class BillingCycleSet(Event, frozen=True, kw_only=True, tag="billing_cycle_set"):
    """Usage after this event falls in periods of this cycle (open periods keep their bounds)."""

    anchor: datetime
    unit: PeriodUnit
    count: int


class PeriodClosed(Event, frozen=True, kw_only=True, tag="period_closed"):
    """Settles one billing period: its priced usage is debited from the PRE_PAID wallet of each currency."""

    period_start: datetime
    period_end: datetime


class InvoicePaid(Event, frozen=True, kw_only=True, tag="invoice_paid"):
    invoice_id: str
    amount: Decimal
    reference: str = ""


AnyEvent = (
    WalletCreated
    | WalletUpdated
    | WalletTerminated
    | WalletFrozen
    | WalletUnfrozen
    | CreditsGranted
    | CreditsPaid
    | CreditsDebited
    | CreditsExpired
    | UsageRecorded
    | BillingCycleSet
    | PeriodClosed
    | InvoicePaid
)
