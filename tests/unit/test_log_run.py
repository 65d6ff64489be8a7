"""Replay and verify's fold (store/entries.py fold_log) folds usage runs in one step, and is exactly the fold event
by event: the same account bytes, ledger changes, and the same entry (and reason) where it stops.

The histories are tests/unit/test_usage_run.py's (alert thresholds, auto top-up, expiring lots, late and unpriced
usage, period closes, cycle changes); some get an entry that cannot be decoded at a random place."""

from collections.abc import Sequence
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import store.entries
from domain.codec import encode_account, encode_event
from domain.events import AnyEvent, UsageRecorded, WalletCreated
from domain.fold import advance_logged
from domain.money import exact_arithmetic
from domain.state import EMPTY_ACCOUNT, Account, LedgerWrite
from domain.usage_run import fold_usage_run
from store.entries import LogEntry, LogFold, decode_entry, fold_log
from tests.unit.test_usage_run import CARDS, T0, histories, usage

Folded = tuple[Account, list[LedgerWrite], str | None, str]


def one_by_one(entries: list[LogEntry]) -> Folded:
    """The fold as replay did it before: each entry decoded and advanced alone."""
    account, ledger = EMPTY_ACCOUNT, list[LedgerWrite]()
    with exact_arithmetic():
        for entry in entries:
            try:
                account, written = advance_logged(account, entry.position,
                                                  decode_entry(entry.payload, entry.rates, CARDS))
            except Exception as exc:
                return account, ledger, entry.position, f"{type(exc).__name__}: {exc}"[:2000]
            ledger += written
    return account, ledger, None, ""


def logged(events: list[AnyEvent], broken: int | None) -> list[LogEntry]:
    return [LogEntry(f"{n}-0", b"\xc1 not an event" if n == broken else encode_event(e))
            for n, e in enumerate(events, start=1)]


def as_compared(fold: LogFold) -> Folded:
    return fold.account, fold.ledger, None if fold.failed is None else fold.failed.position, fold.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), st.none() | st.integers(1, 200), st.integers(0, 200))
def test_fold_log_is_folding_event_by_event(events: list[AnyEvent], broken: int | None, split: int) -> None:
    entries = logged(events, broken)
    expected = one_by_one(entries)
    first = fold_log(EMPTY_ACCOUNT, entries[:split], CARDS)  # verify folds a log in two parts
    got = as_compared(first if first.failed else fold_log(first.account, entries[split:], CARDS))
    if first.failed is None:
        got = got[0], first.ledger + got[1], got[2], got[3]
    assert encode_account(got[0]) == encode_account(expected[0])
    assert got[1:] == expected[1:]


def test_a_usage_run_in_a_log_folds_in_one_step_and_stops_at_a_broken_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """By example: the three usage entries before a broken one fold in one run call, and the broken entry is
    reported with the account at the entry before it."""
    runs: list[int] = []

    def counted(account: Account, run: Sequence[tuple[str, UsageRecorded]]) -> tuple[Account, int]:
        runs.append(len(run))
        return fold_usage_run(account, run)

    monkeypatch.setattr(store.entries, "fold_usage_run", counted)
    wallet = WalletCreated(
        id="c", at=T0, wallet_id="w0", tenant_id="t", environment_id="e", customer_id="c", currency="USD",
        wallet_type="PRE_PAID", conversion_rate=D(1), topup_conversion_rate=D(1), initial_credits=D(100),
        initial_transaction_id="init",
    )
    events: list[AnyEvent] = [wallet, *(usage(n, 20) for n in range(1, 6))]
    fold = fold_log(EMPTY_ACCOUNT, logged(events, broken=5), CARDS)
    assert runs == [3]
    assert fold.failed is not None and fold.failed.position == "5-0" and fold.reason.startswith("DecodeError")
    assert (fold.account.position, fold.account.applied, fold.account.usage_events) == ("4-0", 4, 3)
    assert sum(line.quantity for p in fold.account.periods.values() for line in p.lines.values()) == 60
    assert as_compared(fold)[1:] == one_by_one(logged(events, broken=5))[1:]
