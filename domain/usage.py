"""Usage in the fold: pricing raw events into open periods, settling a closed period, paying its invoice."""

import functools
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

from domain.events import BillingCycleSet, InvoicePaid, PeriodClosed, UsageRecorded
from domain.ledger import Written, debit
from domain.money import ZERO, canonical, divide_up, exact
from domain.periods import BillingCycle, period_of
from domain.pricing import PriceVersion, charge, in_force, quantity_of
from domain.references import SETTLEMENT_PREFIX
from domain.state import Account, Invoice, LedgerWrite, PeriodUsage, PriceUsage, Wallet

replace: Final = msgspec.structs.replace


@functools.lru_cache(maxsize=4096)
def period_key(start: datetime) -> str:
    """The key of a period in `Account.periods` (every usage event of a period asks for it: cached)."""
    return start.isoformat()


def admits_usage(wallet: Wallet) -> bool:
    types = wallet.allowed_price_types
    return types is None or "ALL" in types or "USAGE" in types


def open_period_for(periods: Mapping[str, PeriodUsage], closed_until: datetime | None, cycle: BillingCycle,
                    event: UsageRecorded) -> tuple[datetime, datetime, bool]:
    """The period an event is charged in (the first open one holding its timestamp, else its cycle's), and whether
    it is late (its own period is closed already)."""
    for period in periods.values():
        if period.start <= event.timestamp < period.end:
            return period.start, period.end, False
    late = closed_until is not None and event.timestamp < closed_until
    when = event.timestamp
    if late:
        assert closed_until is not None
        when = max(event.at, closed_until)
    start, end = period_of(cycle, when)
    return start, end, late


def priced_quantities(event: UsageRecorded) -> list[tuple[PriceVersion, Decimal]]:
    """What the event adds under each price in force for it (prices whose filters exclude it left out)."""
    return quantities_under(in_force(event.prices, event.event_name, event.timestamp), event)


def quantities_under(prices: list[PriceVersion], event: UsageRecorded) -> list[tuple[PriceVersion, Decimal]]:
    """What the event adds under each of `prices` (the versions in force for it), those that exclude it left out."""
    found: list[tuple[PriceVersion, Decimal]] = []
    for price in prices:
        quantity = quantity_of(price, event.properties)
        if quantity is not None:
            found.append((price, quantity))
    return found


def record_usage(account: Account, event: UsageRecorded) -> Account:
    start, end, late = open_period_for(account.periods, account.closed_until, account.cycle, event)
    key = period_key(start)
    period = account.periods.get(key) or PeriodUsage(start=start, end=end)
    lines = dict(period.lines)
    priced = priced_quantities(event)
    for price, quantity in priced:
        line = lines.get(price.id)
        lines[price.id] = PriceUsage(
            price=price, quantity=quantity + (line.quantity if line else ZERO), events=(line.events if line else 0) + 1
        )
    period = replace(
        period, lines=lines, events=period.events + 1, late_events=period.late_events + int(late),
        unpriced_events=period.unpriced_events + int(not priced),
    )
    return replace(account, periods={**account.periods, key: period}, usage_events=account.usage_events + 1)


def set_cycle(account: Account, event: BillingCycleSet) -> Account:
    return replace(account, cycle=BillingCycle(anchor=event.anchor, unit=event.unit, count=event.count))


@exact
def period_charges(period: PeriodUsage) -> dict[str, Decimal]:
    """Amount per currency of a period's usage."""
    totals: dict[str, Decimal] = {}
    for line in period.lines.values():
        currency = line.price.currency
        totals[currency] = totals.get(currency, ZERO) + charge(line.price, line.quantity)
    return totals


@exact
def pending_charges(account: Account, currency: str) -> Decimal:
    """Priced usage of every open period in `currency`: what `period_charges` gives each period in that currency,
    summed line by line (exact sums: the same value) without a dict a period."""
    total = ZERO
    for period in account.periods.values():
        for line in period.lines.values():
            if line.price.currency == currency:
                total += charge(line.price, line.quantity)
    return total


def unpaid_amount(account: Account, currency: str) -> Decimal:
    return sum((i.unpaid for i in account.invoices.values() if i.currency == currency), ZERO)


def settlement_wallet(account: Account, currency: str) -> Wallet | None:
    """The PRE_PAID wallet that pays usage in `currency`: not terminated, admitting usage, oldest first."""
    candidates = [
        w for w in account.wallets.values()
        if w.currency == currency and w.wallet_type == "PRE_PAID" and w.status != "closed" and admits_usage(w)
    ]
    return min(candidates, key=lambda w: (w.created_at, w.id), default=None)


def invoice_id(start: datetime, currency: str) -> str:
    return f"inv_{start.strftime('%Y%m%dT%H%M%S')}_{currency}"


def close_period(account: Account, event: PeriodClosed) -> tuple[Account, Written]:
    """Settle the period; returns the account and the settlement entries written."""
    closed_until = max(filter(None, (account.closed_until, event.period_end)))
    period = account.periods.get(period_key(event.period_start))
    if period is None:
        return replace(account, closed_until=closed_until), ()
    wallets = dict(account.wallets)
    invoices = dict(account.invoices)
    written: list[LedgerWrite] = []
    for currency, amount in sorted(period_charges(period).items()):
        paid = _settle(wallets, account, currency, amount, event, period, written)
        if amount - paid > 0:
            number = invoice_id(period.start, currency)
            invoices[number] = Invoice(
                id=number, currency=currency, period_start=period.start, period_end=period.end,
                amount=canonical(amount), paid_from_wallet=canonical(paid), unpaid=canonical(amount - paid),
                late_events=period.late_events,
            )
    periods = {k: v for k, v in account.periods.items() if k != period_key(event.period_start)}
    closed = replace(account, wallets=wallets, invoices=invoices, periods=periods, closed_until=closed_until)
    return closed, tuple(written)


def _settle(
    wallets: dict[str, Wallet], account: Account, currency: str, amount: Decimal, event: PeriodClosed,
    period: PeriodUsage, written: list[LedgerWrite],
) -> Decimal:
    """Debit the period's amount in `currency` from its wallet; returns the amount paid from credits."""
    wallet = settlement_wallet(account, currency)
    if wallet is None or amount <= 0:
        return ZERO
    credits = divide_up(amount, wallet.conversion_rate)  # never leaves a sub-unit remainder unpaid
    metadata = {"period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
                "invoice_id": invoice_id(period.start, currency), "late_events": str(period.late_events)}
    settled, paid_credits, entry = debit(
        wallet, credits, event.at, transaction_id=f"{SETTLEMENT_PREFIX}{invoice_id(period.start, currency)}",
        event_id=event.id,
        reason="CREDIT_ADJUSTMENT", description="usage settlement", metadata=metadata,
    )
    wallets[wallet.id] = settled
    written.extend(entry)
    return min(amount, canonical(paid_credits * wallet.conversion_rate))


def pay_invoice(account: Account, event: InvoicePaid) -> Account:
    invoice = account.invoices.get(event.invoice_id)
    if invoice is None or event.amount <= 0:
        return account
    paid = replace(invoice, unpaid=canonical(max(ZERO, invoice.unpaid - event.amount)))
    return replace(account, invoices={**account.invoices, invoice.id: paid})
