"""Given/when/then builders for usage: price versions, usage events, period closes, invoice payments."""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from domain.events import InvoicePaid, PeriodClosed, UsageRecorded, WalletCreated, WalletType
from domain.pricing import Aggregation, PriceVersion, Tier, TierMode
from domain.settings import PriceType
from domain.state import Account, LedgerEntry
from tests.unit.given import T0, created, ledger_of

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
JAN = T0
FEB = datetime(2025, 2, 1, tzinfo=UTC)
MAR = datetime(2025, 3, 1, tzinfo=UTC)
APR = datetime(2025, 4, 1, tzinfo=UTC)
JAN_INVOICE = "inv_20250101T000000_USD"


def price(
    price_id: str = "p1", *, amount: str = "0", event: str = "api_call", currency: str = "USD",
    lookup_key: str | None = None, aggregation: Aggregation = "COUNT", field: str | None = None,
    filters: Mapping[str, tuple[str, ...]] | None = None, effective_from: datetime = EPOCH,
    created_at: datetime | None = None,
) -> PriceVersion:
    """A per-unit (FLAT_FEE) price version; `package` and `tiered` re-shape it."""
    return PriceVersion(
        id=price_id, lookup_key=lookup_key or price_id, event_name=event, currency=currency,
        aggregation=aggregation, field=field, filters=dict(filters or {}), billing_model="FLAT_FEE",
        amount=Decimal(amount), effective_from=effective_from, created_at=created_at or effective_from,
    )


def package(amount: str, divide_by: str, *, round_up: bool = True, price_id: str = "pkg") -> PriceVersion:
    return msgspec.structs.replace(
        price(price_id, amount=amount), billing_model="PACKAGE", package_size=Decimal(divide_by), round_up=round_up,
    )


def tier(up_to: str | None, unit: str, flat: str = "0") -> Tier:
    return Tier(up_to=None if up_to is None else Decimal(up_to), unit_amount=Decimal(unit), flat_amount=Decimal(flat))


def tiered(mode: TierMode, *tiers: Tier, price_id: str = "tiers") -> PriceVersion:
    return msgspec.structs.replace(price(price_id), billing_model="TIERED", tier_mode=mode, tiers=tiers)


def usage(
    event_id: str, timestamp: datetime, *prices: PriceVersion, at: datetime | None = None, event: str = "api_call",
    properties: Mapping[str, str | int | float] | None = None,
) -> UsageRecorded:
    """A usage event with the rate card versions attached; accepted at `at` (default: its timestamp)."""
    return UsageRecorded(
        id=event_id, at=at or timestamp, event_name=event, external_customer_id="c1", timestamp=timestamp,
        properties=dict(properties or {}), prices=prices,
    )


UNITS = price("units", aggregation="SUM", field="n", amount="0.5")


def units(event_id: str, n: str, timestamp: datetime, *, at: datetime | None = None) -> UsageRecorded:
    """Usage of `n` units of UNITS (0.5 USD each)."""
    return usage(event_id, timestamp, UNITS, properties={"n": n}, at=at)


def closed(start: datetime, end: datetime, *, at: datetime | None = None, event_id: str | None = None) -> PeriodClosed:
    return PeriodClosed(
        id=event_id or f"ev-close-{start.isoformat()}", at=at or end, period_start=start, period_end=end,
    )


def paid(invoice_id: str, amount: str, *, at: datetime, event_id: str | None = None) -> InvoicePaid:
    return InvoicePaid(id=event_id or f"ev-pay-{amount}-{at.isoformat()}", at=at, invoice_id=invoice_id,
                       amount=Decimal(amount))


def wallet(
    wallet_id: str = "w1", *, currency: str = "USD", rate: str = "1", wallet_type: WalletType = "PRE_PAID",
    types: tuple[PriceType, ...] | None = None, at: datetime = T0,
) -> WalletCreated:
    """`created` with a config.allowed_price_types."""
    event = created(wallet_id, currency=currency, rate=rate, wallet_type=wallet_type, at=at)
    return msgspec.structs.replace(event, allowed_price_types=types)


def ledger_totals(account: Account, wallet_id: str = "w1") -> dict[str, Decimal]:
    """Credits per entry reason (grants summed under 'granted')."""
    totals: dict[str, Decimal] = {}
    for entry in ledger_of(account, wallet_id):
        key = "granted" if entry.type == "credit" else entry.reason
        totals[key] = totals.get(key, Decimal(0)) + entry.credits
    return totals


def settlement_entry(account: Account, wallet_id: str = "w1") -> LedgerEntry:
    return next(e for e in reversed(ledger_of(account, wallet_id)) if e.reason == "CREDIT_ADJUSTMENT")
