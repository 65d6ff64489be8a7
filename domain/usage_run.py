"""A run of consecutive usage events folded in one step: each priced into its (period, price line) and the account
replaced once at the end, instead of a new PeriodUsage and Account per event.

Exactly what `fold` reaches event by event (the property tests in tests/unit/test_usage_run.py say so): a usage
event writes no ledger entry and changes no wallet, so the only thing that could differ is the watch. The run
therefore checks, after each event, what the watch would do with the wallet figures the event left (the running
charges per currency, kept incrementally), and stops *before* the first event at which it could move a wallet (an
alert state, an auto top-up trigger) or at which anything raises: the caller folds that one event alone with
`advance_logged`, which finds the same crossing at the same position, and goes on with the rest.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

from domain.balance import deducts_charges, real_time_credits
from domain.events import UsageRecorded
from domain.lots import available_credits
from domain.money import ZERO, exact
from domain.pricing import InForceSpan, PriceVersion, charge
from domain.state import Account, PeriodUsage, PriceUsage, Wallet
from domain.usage import admits_usage, open_period_for, period_key, quantities_under, unpaid_amount
from domain.watch import watchable, watched_at

replace: Final = msgspec.structs.replace
Line = tuple[PriceVersion, Decimal, int]  # a price line while the run folds it: price, quantity, events


class _Period:
    """One period's usage while the run folds it; a PeriodUsage again once, at the end."""

    __slots__ = ("base", "changed", "events", "late", "lines", "unpriced")

    def __init__(self, base: PeriodUsage) -> None:
        self.base = base
        self.lines: dict[str, PriceUsage | None] = dict(base.lines)  # the order the lines will have; None: new
        self.changed: dict[str, Line] = {}
        self.events, self.late, self.unpriced = base.events, base.late_events, base.unpriced_events

    def usage(self) -> PeriodUsage:
        lines = {k: PriceUsage(price=c[0], quantity=c[1], events=c[2]) if (c := self.changed.get(k)) else v
                 for k, v in self.lines.items()}
        return replace(self.base, lines=lines, events=self.events, late_events=self.late,
                       unpriced_events=self.unpriced)


class _Charges:
    """The priced usage of every open period per currency, kept per line as the run adds to it (what
    `pending_charges` sums from scratch)."""

    def __init__(self, periods: dict[str, PeriodUsage]) -> None:
        self.lines: dict[tuple[str, str], tuple[str, Decimal]] = {}
        self.totals: dict[str, Decimal] = {}
        for key, period in periods.items():
            for price_id, line in period.lines.items():
                self.add(key, price_id, line.price, line.quantity)

    def add(self, key: str, price_id: str, price: PriceVersion, quantity: Decimal) -> None:
        """Line `price_id` of period `key` now holds `quantity` under `price`."""
        amount = charge(price, quantity)
        old = self.lines.get((key, price_id))
        if old is not None:
            self.totals[old[0]] -= old[1]
        self.lines[key, price_id] = price.currency, amount
        self.totals[price.currency] = self.totals.get(price.currency, ZERO) + amount


class _Run:
    """The account's usage state while a run folds: its periods (open ones first, new ones as they open)."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.closed_until, self.cycle = account.closed_until, account.cycle
        self.periods: dict[str, PeriodUsage] = dict(account.periods)
        self.open: dict[str, _Period] = {}
        self.watched = [w for w in account.wallets.values() if watchable(w)]
        self.unpaid = {w.currency: unpaid_amount(account, w.currency) for w in self.watched}
        self.charges = _Charges(self.periods) if self.watched else None
        self.in_force = InForceSpan()
        self.start: datetime | None = None  # the last period start asked for, and its key
        self.key = ""
        self.first_start: datetime | None = None  # the bounds of the first period (the first open_period_for tries)
        self.first_end: datetime | None = None
        self._note_first()
        self.chosen: list[PriceVersion] | None = None  # the versions in force last asked for (InForceSpan's list)
        self.counted: list[tuple[PriceVersion, Decimal]] | None = None  # what each event adds under them, if fixed

    def _note_first(self) -> None:
        first = next(iter(self.periods.values()), None)
        if first is not None:
            self.first_start, self.first_end = first.start, first.end

    def _period_for(self, event: UsageRecorded) -> tuple[datetime, datetime, bool]:
        """`open_period_for`: the first period when it holds the event (as there), without walking the dict."""
        start, end = self.first_start, self.first_end
        if start is not None and end is not None and start <= event.timestamp < end:
            return start, end, False
        return open_period_for(self.periods, self.closed_until, self.cycle, event)

    def _priced(self, event: UsageRecorded) -> list[tuple[PriceVersion, Decimal]]:
        """`priced_quantities(event)`. When every version in force counts events without filters, each event adds
        one under each (`quantity_of`), whatever its properties: that list is kept while the versions are."""
        chosen = self.in_force.at(event.prices, event.event_name, event.timestamp)
        if chosen is not self.chosen:
            fixed = all(price.aggregation == "COUNT" and not price.filters for price in chosen)
            self.counted = quantities_under(chosen, event) if fixed else None
            self.chosen = chosen
        return self.counted if self.counted is not None else quantities_under(chosen, event)

    def add(self, position: str, event: UsageRecorded) -> bool:
        """Fold one event; False (and nothing changed) when the watch could move a wallet at it."""
        start, end, late = self._period_for(event)
        if start is not self.start:  # a run's events mostly fall in one period: the same start object each time
            self.start, self.key = start, period_key(start)
        key = self.key
        period = self.open.get(key)
        if period is None:
            period = _Period(self.periods.get(key) or PeriodUsage(start=start, end=end))
        priced = self._priced(event)
        staged: dict[str, Line] = {}
        for price, quantity in priced:
            held = staged.get(price.id) or period.changed.get(price.id)
            if held is not None:
                total, events = held[1], held[2]
            else:
                line = period.lines.get(price.id)
                total, events = (ZERO, 0) if line is None else (line.quantity, line.events)
            staged[price.id] = (price, quantity + total, events + 1)
        if self.charges is not None and not self._quiet(key, staged, position, event):
            return False
        self._commit(key, period, staged, late, not priced)
        return True

    def _quiet(self, key: str, staged: dict[str, Line], position: str, event: UsageRecorded) -> bool:
        """Whether the watch leaves every wallet as it is after this event (the charges then kept, if so)."""
        assert self.charges is not None
        saved = dict(self.charges.lines), dict(self.charges.totals)
        for price_id, (price, quantity, _) in staged.items():
            self.charges.add(key, price_id, price, quantity)
        if all(self._unmoved(w, position, event) for w in self.watched):
            return True
        self.charges.lines, self.charges.totals = saved
        return False

    def _unmoved(self, wallet: Wallet, position: str, event: UsageRecorded) -> bool:
        assert self.charges is not None
        credits = available_credits(wallet.lots, event.at)
        usage = unpaid = ZERO
        if deducts_charges(wallet):
            usage = self.charges.totals.get(wallet.currency, ZERO) if admits_usage(wallet) else ZERO
            unpaid = self.unpaid[wallet.currency]
        real_time = real_time_credits(credits, wallet, usage + unpaid)
        return watched_at(wallet, credits, real_time, position, event.at, True) is wallet

    def _commit(self, key: str, period: _Period, staged: dict[str, Line], late: bool, unpriced: bool) -> None:
        if key not in self.open:
            self.open[key] = period
            self.periods.setdefault(key, period.base)
            if self.first_start is None:
                self._note_first()
        for price_id, line in staged.items():
            if price_id not in period.lines:
                period.lines[price_id] = None
            period.changed[price_id] = line
        period.events += 1
        period.late += int(late)
        period.unpriced += int(unpriced)

    def account_after(self, position: str, count: int) -> Account:
        periods = {k: (self.open[k].usage() if k in self.open else v) for k, v in self.periods.items()}
        return replace(self.account, periods=periods, usage_events=self.account.usage_events + count,
                       position=position, applied=self.account.applied + count)


@exact
def fold_usage_run(account: Account, events: Sequence[tuple[str, UsageRecorded]]) -> tuple[Account, int]:
    """The account `fold` reaches after the first n of `events` (usage events at their stream positions), and n:
    all of them, or those before the first at which the watch could move a wallet or whose fold raises. Those n
    events write no ledger entry and cause no notice; the caller folds the next one alone."""
    count, position = 0, account.position
    try:
        run = _Run(account)
        for where, event in events:
            if not run.add(where, event):
                break
            count, position = count + 1, where
    except Exception:  # the event is left to the caller's own fold, which raises (or not) exactly as before
        pass
    if count == 0:
        return account, 0
    return run.account_after(position, count), count
