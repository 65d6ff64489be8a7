"""Wire shapes of the API (Flexprice-compatible), as msgspec Structs: decoded and encoded once, never by hand."""

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from api.bounded import (
    Currency,
    DateNumber,
    Description,
    IdempotencyKey,
    Metadata,
    Name,
    OptionalId,
    Timestamp,
    UnsupportedText,
)
from domain.events import DebitReason, GrantReason, WalletType
from domain.settings import AlertCondition, AlertState, PriceType

Decimalish = str | int | float


class AlertThresholdWire(msgspec.Struct, forbid_unknown_fields=True):
    threshold: float
    condition: AlertCondition = "below"


class AlertSettingsWire(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    alert_enabled: bool | None = None
    critical: AlertThresholdWire | None = None
    warning: AlertThresholdWire | None = None
    info: AlertThresholdWire | None = None


COOLDOWN_UNITS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86_400, "WEEK": 604_800}
"""Units of an auto top-up `cooldown` (upper or lower case) and their length in seconds; a month or a year has no fixed
length, so neither is a unit."""
# A JSON number or a decimal string, kept as its JSON text: a number's digits are read as written (never through a
# float) and a string goes through the decimal grammar like every other (api/translate.py exact_decimal).
ExactDecimal = Annotated[msgspec.Raw, msgspec.Meta(
    extra_json_schema={"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]})]


CooldownUnit = Literal["SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "second", "minute", "hour", "day", "week"]


class CooldownWire(msgspec.Struct, forbid_unknown_fields=True):
    """Flexprice's form of the cooldown: `value` `unit`s (api/translate.py turns it into whole seconds)."""

    value: ExactDecimal
    unit: CooldownUnit


class CooldownShown(msgspec.Struct):
    value: int
    unit: str


class AutoTopupWire(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """Auto top-up as a wallet shows it; `cooldown` is `cooldown_seconds` in the largest unit that divides it."""

    enabled: bool | None = None
    threshold: float | None = None
    amount: float | None = None
    invoicing: bool | None = None
    cooldown_seconds: int | None = None
    cooldown: CooldownShown | None = None


class AutoTopupRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Auto top-up as a request sets it: threshold and amount exact (numbers or decimal strings); the cooldown as
    `cooldown_seconds` or Flexprice's `cooldown`, not both."""

    enabled: bool | None = None
    threshold: ExactDecimal | UnsetType = UNSET
    amount: ExactDecimal | UnsetType = UNSET
    invoicing: bool | None = None
    cooldown_seconds: int | None = None
    cooldown: CooldownWire | None = None


class WalletConfigWire(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    allowed_price_types: list[PriceType] | None = None


class CreateWalletRequest(msgspec.Struct, forbid_unknown_fields=True):
    currency: Currency
    customer_id: OptionalId | None = None
    external_customer_id: OptionalId | None = None
    wallet_type: WalletType = "PRE_PAID"
    conversion_rate: Decimalish = "1"
    topup_conversion_rate: Decimalish | None = None
    name: Name | None = None
    description: Description | None = None
    metadata: Metadata | None = None
    config: WalletConfigWire | None = None
    alert_settings: AlertSettingsWire | None = None
    auto_topup: AutoTopupRequest | None = None
    initial_credits_to_load: Decimalish | None = None
    initial_credits_expiry_date_utc: Timestamp | None = None
    initial_credits_to_load_expiry_date: DateNumber | None = None
    price_unit: UnsupportedText | None = None  # custom pricing units: credits convert to the wallet's currency


class UpdateWalletRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    description: Description | None = None
    metadata: Metadata | None = None
    config: WalletConfigWire | None = None
    alert_settings: AlertSettingsWire | None = None
    auto_topup: AutoTopupRequest | None = None


class TopUpRequest(msgspec.Struct, forbid_unknown_fields=True):
    transaction_reason: GrantReason
    credits_to_add: Decimalish | None = None
    amount: Decimalish | None = None
    priority: int | None = None
    expiry_date_utc: Timestamp | None = None
    idempotency_key: IdempotencyKey | None = None
    description: Description | None = None
    metadata: Metadata | None = None


class DebitRequest(msgspec.Struct, forbid_unknown_fields=True):
    credits: Decimalish
    transaction_reason: DebitReason = "MANUAL_BALANCE_DEBIT"
    idempotency_key: IdempotencyKey | None = None
    description: Description | None = None
    metadata: Metadata | None = None


class CreditBreakdownWire(msgspec.Struct):
    free: str
    purchased: str


class WalletResponse(msgspec.Struct, omit_defaults=True):
    id: str
    customer_id: str
    tenant_id: str
    environment_id: str
    currency: str
    wallet_type: WalletType
    wallet_status: Literal["active", "frozen", "closed"]
    status: Literal["published"]
    name: str
    description: str
    metadata: dict[str, str]
    config: WalletConfigWire
    conversion_rate: str
    topup_conversion_rate: str
    balance: str
    credit_balance: str
    alert_state: AlertState
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    alert_settings: AlertSettingsWire | None = None
    auto_topup: AutoTopupWire | None = None
    credits_available_breakdown: CreditBreakdownWire | None = None


class WalletBalanceResponse(WalletResponse, omit_defaults=True, kw_only=True):
    """The real-time balance; `is_cached_fallback`, `folded_position` and `folded_at` say how fresh it is."""

    balance_updated_at: datetime
    current_period_usage: str
    unpaid_invoices_amount: str
    real_time_balance: str
    real_time_credit_balance: str
    is_cached_fallback: bool
    folded_position: str
    read_position: str
    folded_at: str | None = None


class LotPaid(msgspec.Struct):
    transaction_id: str
    credits: str


class TransactionResponse(msgspec.Struct, omit_defaults=True):
    id: str
    wallet_id: str
    customer_id: str
    tenant_id: str
    environment_id: str
    type: Literal["credit", "debit"]
    transaction_reason: str
    transaction_status: Literal["completed", "pending", "failed"]
    status: Literal["published"]
    amount: str
    credit_amount: str
    credit_balance_before: str
    credit_balance_after: str
    currency: str
    conversion_rate: str
    topup_conversion_rate: str
    created_at: datetime
    updated_at: datetime
    created_by: str = ""
    updated_by: str = ""
    credits_available: str | None = None
    expiry_date: datetime | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    description: str = ""
    metadata: dict[str, str] = {}
    lots_paid: list[LotPaid] = []
    shortfall: str | None = None
    reference_type: str | None = None
    reference_id: str | None = None
    parent_transaction_id: str | None = None


class TopUpResponse(msgspec.Struct):
    wallet: WalletResponse
    wallet_transaction: TransactionResponse


class Pagination(msgspec.Struct, omit_defaults=True):
    """`next_cursor` (tally's, for the transactions list): pass it as `cursor` for the next page; absent on the last.
    `total` is absent where it is not known exactly (a filtered list whose scan did not cover the whole ledger)."""

    limit: int
    offset: int
    total: int | None = None
    next_cursor: str | None = None


class TransactionList(msgspec.Struct):
    items: list[TransactionResponse]
    pagination: Pagination


class ErrorResponse(msgspec.Struct):
    code: str
    message: str
    http_status_code: int
    details: dict[str, dict[str, Any]] = {}
