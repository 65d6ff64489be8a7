"""The projection of one customer account: its live state (wallets, credit lots, open periods, invoices).

Ledger entries are not part of it: the fold yields them beside the account (`LedgerWrite`) and the store keeps
them apart, so reading, deciding and folding cost the same whatever a wallet's history."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from domain.events import WalletType
from domain.periods import DEFAULT_CYCLE, BillingCycle
from domain.pricing import PriceVersion
from domain.settings import AlertSettings, AlertState, AutoTopup, PriceType

WalletStatus = Literal["active", "frozen", "closed"]
EntryType = Literal["credit", "debit"]


class LotDraw(msgspec.Struct, frozen=True, array_like=True):
    """How much one lot paid towards a debit."""

    lot_id: str
    credits: Decimal


class Lot(msgspec.Struct, frozen=True, kw_only=True):
    """A credit lot while it still holds credits (or awaits payment); an exhausted lot leaves the snapshot."""

    id: str
    granted: Decimal
    remaining: Decimal
    reason: str
    priority: int | None
    expires_at: datetime | None
    granted_at: datetime
    seq: int
    expired: bool = False
    pending: bool = False


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True, array_like=True, omit_defaults=True):
    """One wallet transaction with the credit balance just before and just after it.

    Encoded as an array (domain/codec.py): a new field goes last, with a default."""

    id: str
    event_id: str
    type: EntryType
    reason: str
    credits: Decimal
    credit_balance_before: Decimal
    credit_balance_after: Decimal
    at: datetime
    priority: int | None = None
    expires_at: datetime | None = None
    idempotency_key: str | None = None
    description: str = ""
    metadata: dict[str, str] = {}
    created_by: str = ""
    draws: tuple[LotDraw, ...] = ()
    shortfall: Decimal = Decimal(0)
    pending: bool = False
    seq: int = 0


class LedgerWrite(msgspec.Struct, frozen=True):
    """A ledger change the fold made: a new entry (`new`), or a new version of an entry written before (same
    `seq`, its place in the wallet's ledger: 0, 1, 2, ...)."""

    wallet_id: str
    entry: LedgerEntry
    new: bool = True


class Wallet(msgspec.Struct, frozen=True, kw_only=True):
    """Live state of one wallet. `entries` counts its ledger entries (the next one's seq); `pending_entries` are
    the entries of top-ups awaiting payment, kept until paid so that paying one rewrites its entry."""

    id: str
    tenant_id: str
    environment_id: str
    customer_id: str
    currency: str
    wallet_type: WalletType
    conversion_rate: Decimal
    topup_conversion_rate: Decimal
    allowed_price_types: tuple[PriceType, ...] | None
    alert_settings: AlertSettings | None
    auto_topup: AutoTopup | None
    name: str
    description: str
    metadata: dict[str, str]
    status: WalletStatus
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    balance_updated_at: datetime
    lots: tuple[Lot, ...] = ()
    lot_seq: int = 0
    entries: int = 0
    pending_entries: tuple[LedgerEntry, ...] = ()
    ongoing_alert: AlertState = "ok"
    credit_alert: AlertState = "ok"
    auto_topup_trigger: str | None = None
    auto_topup_armed_at: datetime | None = None
    last_auto_topup_at: datetime | None = None


class PriceUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Usage of one price version in one period: its amount is always charge(price, quantity)."""

    price: PriceVersion
    quantity: Decimal
    events: int


class PeriodUsage(msgspec.Struct, frozen=True, kw_only=True):
    """An open (unsettled) billing period. `late_events` arrived after the period they belong to closed."""

    start: datetime
    end: datetime
    lines: dict[str, PriceUsage] = {}
    events: int = 0
    late_events: int = 0
    unpriced_events: int = 0


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    """What a settled period left for the customer to pay in one currency."""

    id: str
    currency: str
    period_start: datetime
    period_end: datetime
    amount: Decimal
    paid_from_wallet: Decimal
    unpaid: Decimal
    late_events: int = 0


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """Everything folded for one customer, up to `position` in its stream (`applied` events in all)."""

    wallets: dict[str, Wallet] = {}
    position: str = "0-0"
    applied: int = 0
    usage_events: int = 0
    cycle: BillingCycle = DEFAULT_CYCLE
    periods: dict[str, PeriodUsage] = {}
    closed_until: datetime | None = None
    invoices: dict[str, Invoice] = {}


EMPTY_ACCOUNT = Account()
