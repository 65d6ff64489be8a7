"""Commands: what a caller asks of an account. Ids are minted by the caller, so deciding stays pure."""

from datetime import datetime
from decimal import Decimal

import msgspec

from domain.events import DebitReason, GrantReason, WalletType
from domain.periods import PeriodUnit
from domain.settings import AlertSettings, AutoTopup, PriceType


class Command(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    actor: str = ""


class CreateWallet(Command, frozen=True, kw_only=True):
    wallet_id: str
    tenant_id: str
    environment_id: str
    customer_id: str
    currency: str
    wallet_type: WalletType = "PRE_PAID"
    conversion_rate: Decimal = Decimal(1)
    topup_conversion_rate: Decimal | None = None
    allowed_price_types: tuple[PriceType, ...] | None = None
    alert_settings: AlertSettings | None = None
    auto_topup: AutoTopup | None = None
    name: str = ""
    description: str = ""
    metadata: dict[str, str] = {}
    initial_credits: Decimal = Decimal(0)
    initial_credits_expire_at: datetime | None = None
    initial_transaction_id: str = ""


class UpdateWallet(Command, frozen=True, kw_only=True):
    wallet_id: str
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    alert_settings: AlertSettings | None = None
    auto_topup: AutoTopup | None = None
    allowed_price_types: tuple[PriceType, ...] | None = None


class TopUpWallet(Command, frozen=True, kw_only=True):
    """`credits`, or else `amount` (in currency, converted at the top-up rate), decides the lot size."""

    wallet_id: str
    transaction_id: str
    reason: GrantReason
    credits: Decimal | None = None
    amount: Decimal | None = None
    priority: int | None = None
    expires_at: datetime | None = None
    idempotency_key: str | None = None
    description: str = ""
    metadata: dict[str, str] = {}


class DebitWallet(Command, frozen=True, kw_only=True):
    wallet_id: str
    transaction_id: str
    credits: Decimal
    reason: DebitReason = "MANUAL_BALANCE_DEBIT"
    idempotency_key: str | None = None
    description: str = ""
    metadata: dict[str, str] = {}


class TerminateWallet(Command, frozen=True, kw_only=True):
    wallet_id: str
    transaction_id: str


class FreezeWallet(Command, frozen=True, kw_only=True):
    wallet_id: str


class UnfreezeWallet(Command, frozen=True, kw_only=True):
    wallet_id: str


class PayTopUp(Command, frozen=True, kw_only=True):
    """Mark a pending (invoiced) top-up as paid."""

    wallet_id: str
    transaction_id: str


class SetBillingCycle(Command, frozen=True, kw_only=True):
    anchor: datetime
    unit: PeriodUnit
    count: int


class PayInvoice(Command, frozen=True, kw_only=True):
    """Record a payment; without `amount`, the whole unpaid rest."""

    invoice_id: str
    amount: Decimal | None = None
    reference: str = ""


AnyCommand = (
    CreateWallet | UpdateWallet | TopUpWallet | DebitWallet | TerminateWallet | FreezeWallet | UnfreezeWallet
    | SetBillingCycle | PayInvoice | PayTopUp
)
