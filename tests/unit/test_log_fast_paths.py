"""The cheaper steps of replay's fold (store/entries.py fold_log) against the forms they replaced.

- `decode_entry` attaches a usage entry's rate card to the decoded event in place: the same event as a copy with
  the prices attached (`msgspec.structs.replace`), for every kind of event.
- `InForceSpan.at` answers `in_force` again while the instant stays between the versions' effective_from: the same
  versions as `in_force` asked each time, for any sequence of questions over shared and fresh price lists.
- A grant's entry writes the credit balance after it from the balance before and the new lot: what summing the
  wallet's lots again gives, digits and exponent.
- A period's bounds count a month's days without `calendar.monthrange`: the same count for every month.
- A log whose usage entries name their rate card by digest (as the store keeps them, one decoded tuple a card; fold_log
  asks `cards` again only when the digest changes) folds to the account, ledger and failure of the previous decode
  and `advance_logged` one entry at a time, with entries naming two cards in turn and some naming a missing one.
"""

import calendar
import hashlib
from datetime import timedelta

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from domain.codec import decode_event, encode_account, encode_event, encode_prices
from domain.events import AnyEvent, CreditsGranted, UsageRecorded, WalletCreated
from domain.fold import advance_logged
from domain.lots import available_credits
from domain.money import exact_arithmetic
from domain.periods import days_in_month
from domain.pricing import InForceSpan, PriceVersion, in_force
from domain.state import EMPTY_ACCOUNT, Account, LedgerWrite
from store.entries import LogEntry, decode_entry, fold_log
from store.keys import Keys
from store.ratecard import RateCards
from tests.unit.test_usage_run import T0, histories, prices

Folded = tuple[Account, list[LedgerWrite], str | None, str]


def by_digest(events: list[AnyEvent], broken: int | None, cards_named: list[int] | None = None) -> tuple[
        list[LogEntry], RateCards]:
    """The log as the store holds it: each usage entry without its prices, naming its rate card by digest. The
    k-th usage entry names card `cards_named[k % len]`: 0 its own prices, 1 the same versions in another order
    (another digest), 2 a digest `cards` does not hold."""
    cards, entries, usages = RateCards(Redis(), Keys()), list[LogEntry](), 0
    for n, event in enumerate(events, start=1):
        if n == broken:
            entries.append(LogEntry(f"{n}-0", b"\xc1 not an event"))
        elif isinstance(event, UsageRecorded):
            card = cards_named[usages % len(cards_named)] if cards_named else 0
            usages += 1
            blob = encode_prices(event.prices if card == 0 else event.prices[::-1])
            digest = hashlib.sha256(blob).digest()[:16]
            if card < 2:
                cards.remember({digest: blob})
            else:
                digest = b"missing" + digest
            entries.append(LogEntry(f"{n}-0", encode_event(msgspec.structs.replace(event, prices=())), digest))
        else:
            entries.append(LogEntry(f"{n}-0", encode_event(event)))
    return entries, cards


def copied(entry: LogEntry, cards: RateCards) -> AnyEvent:
    """The decode as it was: the prices attached to a copy of the decoded event."""
    event = decode_event(entry.payload)
    if entry.rates is not None and isinstance(event, UsageRecorded):
        return msgspec.structs.replace(event, prices=cards.prices(entry.rates))
    return event


def one_by_one(entries: list[LogEntry], cards: RateCards) -> Folded:
    account, ledger = EMPTY_ACCOUNT, list[LedgerWrite]()
    with exact_arithmetic():
        for entry in entries:
            try:
                account, written = advance_logged(account, entry.position, copied(entry, cards))
            except Exception as exc:
                return account, ledger, entry.position, f"{type(exc).__name__}: {exc}"[:2000]
            ledger += written
    return account, ledger, None, ""


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_decoding_attaches_the_rate_card_as_the_copy_did(events: list[AnyEvent]) -> None:
    entries, cards = by_digest(events, None)
    for entry in entries:
        decoded, expected = decode_entry(entry.payload, entry.rates, cards), copied(entry, cards)
        assert type(decoded) is type(expected)
        assert decoded == expected
        assert encode_event(decoded) == encode_event(expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["api", "tok"]), st.integers(0, 3),
                          st.sampled_from([0, -1, 1, 3600])), min_size=1, max_size=40),
       st.lists(st.integers(0, 4).flatmap(lambda n: st.tuples(*(prices(i) for i in range(n)))), min_size=2, max_size=2))
def test_in_force_span_answers_what_in_force_answers(asked: list[tuple[int, str, int, int]],
                                                   lists: list[tuple[PriceVersion, ...]]) -> None:
    """Questions at a version's effective_from, a second before or after it or an hour later, over two price lists,
    in any order."""
    memo = InForceSpan()
    for which, name, pick, seconds in asked:
        versions = lists[which]
        at = (versions[pick % len(versions)].effective_from if versions else T0) + timedelta(seconds=seconds)
        assert memo.at(versions, name, at) == in_force(versions, name, at)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), st.none() | st.integers(1, 200), st.integers(0, 200),
       st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=1, max_size=40))
def test_a_log_with_rate_cards_by_digest_folds_as_one_entry_at_a_time(events: list[AnyEvent], broken: int | None,
                                                                      split: int, cards_named: list[int]) -> None:
    entries, cards = by_digest(events, broken, cards_named)
    expected = one_by_one(entries, cards)
    first = fold_log(EMPTY_ACCOUNT, entries[:split], cards)
    rest = first if first.failed else fold_log(first.account, entries[split:], cards)
    ledger = rest.ledger if first.failed else first.ledger + rest.ledger
    assert encode_account(rest.account) == encode_account(expected[0])
    assert (ledger, None if rest.failed is None else rest.failed.position, rest.reason) == expected[1:]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_a_grant_writes_the_balance_after_as_summing_the_lots_again_would(events: list[AnyEvent]) -> None:
    """A grant's entry takes its credit_balance_after from the balance before plus the new lot (one pass over the
    lots): the very Decimal (digits and exponent) that summing the wallet's lots after the grant gives."""
    account = EMPTY_ACCOUNT
    with exact_arithmetic():
        for n, event in enumerate(events, start=1):
            try:
                after, written = advance_logged(account, f"{n}-0", event)
            except Exception:
                return
            for write in written:
                if write.entry.type == "credit" and isinstance(event, CreditsGranted | WalletCreated):
                    lots = after.wallets[write.wallet_id].lots
                    expected = available_credits(lots, event.at)
                    assert write.entry.credit_balance_after.as_tuple() == expected.as_tuple()
            account = after


def test_days_in_month_is_what_calendar_monthrange_says() -> None:
    """Every month of every year a datetime can hold (domain/periods.py add_months no longer asks calendar)."""
    assert all(days_in_month(y, m) == calendar.monthrange(y, m)[1] for y in range(1, 10000) for m in range(1, 13))
