"""Credit lots: the order debits consume them in, partial draws, shortfall, expiry, and the breakdown."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import get_args

import pytest
from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from domain.events import GrantReason
from domain.lots import available_credits, breakdown
from tests.unit.given import (
    T0,
    after,
    balance_at,
    created,
    debited,
    draws_of,
    expired,
    given,
    granted,
    last_entry,
    ledger_of,
    wallet_of,
)

D = Decimal


def test_debit_consumes_lowest_priority_first_and_unprioritised_lots_last() -> None:
    account = given(
        created(),
        granted("none", "10"),
        granted("p2", "10", priority=2),
        granted("p0", "10", priority=0),
        granted("p1", "10", priority=1),
        debited("d", "35", at=after(minutes=1)),
    )
    assert draws_of(last_entry(account)) == [("p0", D(10)), ("p1", D(10)), ("p2", D(10)), ("none", D(5))]


def test_within_a_priority_the_earliest_expiry_goes_first_and_lots_without_expiry_last() -> None:
    account = given(
        created(),
        granted("forever", "10", priority=1),
        granted("late", "10", priority=1, expires_at=after(days=30)),
        granted("soon", "10", priority=1, expires_at=after(days=2)),
        debited("d", "25", at=after(minutes=1)),
    )
    assert draws_of(last_entry(account)) == [("soon", D(10)), ("late", D(10)), ("forever", D(5))]


def test_priority_outranks_expiry() -> None:
    account = given(
        created(),
        granted("p2-soon", "10", priority=2, expires_at=after(days=1)),
        granted("p1-forever", "10", priority=1),
        debited("d", "12", at=after(minutes=1)),
    )
    assert draws_of(last_entry(account)) == [("p1-forever", D(10)), ("p2-soon", D(2))]


def test_ties_on_priority_and_expiry_go_oldest_first() -> None:
    expiry = after(days=5)
    account = given(
        created(),
        granted("first", "3", expires_at=expiry, at=after(minutes=1)),
        granted("second", "3", expires_at=expiry, at=after(minutes=2)),
        granted("third", "3", expires_at=expiry, at=after(minutes=3)),
        debited("d", "7", at=after(minutes=4)),
    )
    assert draws_of(last_entry(account)) == [("first", D(3)), ("second", D(3)), ("third", D(1))]


def test_partial_draws_leave_the_rest_of_a_lot_for_the_next_debit() -> None:
    account = given(
        created(),
        granted("a", "10.50", priority=1),
        granted("b", "4"),
        debited("d1", "3.25", at=after(minutes=1)),
        debited("d2", "8.00", at=after(minutes=2)),
    )
    lots = {lot.id: lot.remaining for lot in wallet_of(account).lots}
    assert lots == {"b": D("3.25")}  # the spent lot "a" is dropped from the snapshot
    first, second = ledger_of(account)[-2:]
    assert draws_of(first) == [("a", D("3.25"))]
    assert draws_of(second) == [("a", D("7.25")), ("b", D("0.75"))]
    assert balance_at(account, after(minutes=3)).credit_balance == D("3.25")


def test_the_ledger_entry_records_credits_balances_and_draws_of_a_debit() -> None:
    account = given(created(), granted("a", "5"), granted("b", "5", priority=1), debited("d", "7", at=after(hours=1)))
    entry = last_entry(account)
    assert (entry.id, entry.event_id, entry.type, entry.reason) == ("d", "ev-d", "debit", "MANUAL_BALANCE_DEBIT")
    assert (entry.credits, entry.credit_balance_before, entry.credit_balance_after) == (D(7), D(10), D(3))
    assert draws_of(entry) == [("b", D(5)), ("a", D(2))]
    assert entry.shortfall == 0


def test_a_debit_beyond_the_available_credits_records_the_shortfall() -> None:
    account = given(created(), granted("a", "6"), granted("b", "4.5"), debited("d", "12", at=after(hours=1)))
    entry = last_entry(account)
    assert draws_of(entry) == [("a", D(6)), ("b", D("4.5"))]
    assert (entry.credits, entry.shortfall) == (D("10.5"), D("1.5"))
    assert (entry.credit_balance_before, entry.credit_balance_after) == (D("10.5"), D(0))
    assert balance_at(account, after(hours=2)).credit_balance == 0


def test_a_debit_on_an_empty_wallet_is_all_shortfall() -> None:
    entry = last_entry(given(created(), debited("d", "5")))
    assert (entry.credits, entry.shortfall, entry.draws) == (D(0), D(5), ())


@pytest.mark.parametrize(
    ("now", "available"),
    [(after(days=1, micros=-1), D(15)), (after(days=1), D(5)), (after(days=1, micros=1), D(5)), (after(days=9), D(5))],
)
def test_a_lot_is_available_strictly_before_its_expiry_even_without_credits_expired(
    now: datetime, available: Decimal
) -> None:
    account = given(created(), granted("exp", "10", expires_at=after(days=1)), granted("keep", "5"))
    view = balance_at(account, now)
    assert view.credit_balance == available
    assert view.free_credits + view.purchased_credits == available


def test_a_debit_after_expiry_never_draws_from_the_expired_lot() -> None:
    account = given(
        created(),
        granted("exp", "10", priority=0, expires_at=after(days=1)),
        granted("keep", "5", priority=9),
        debited("d", "8", at=after(days=1)),
    )
    entry = last_entry(account)
    assert draws_of(entry) == [("keep", D(5))]
    assert (entry.credit_balance_before, entry.shortfall) == (D(5), D(3))


def test_credits_expired_zeroes_the_lot_once() -> None:
    history = (
        created(),
        granted("exp", "10", expires_at=after(days=1)),
        granted("keep", "5"),
        debited("d", "3", at=after(hours=1)),
        expired("exp", at=after(days=1)),
    )
    account = given(*history)
    entry = last_entry(account)
    assert (entry.type, entry.reason, entry.credits) == ("debit", "CREDIT_EXPIRED", D(7))
    assert entry.credit_balance_after == D(5)
    assert [(lot.id, lot.remaining) for lot in wallet_of(account).lots] == [("keep", D(5))]  # "exp" is dropped
    again = given(expired("exp", at=after(days=2), tx="exp-again"), account=account)
    assert wallet_of(again) == wallet_of(account)
    assert balance_at(again, after(days=3)).credit_balance == D(5)


def test_an_expired_lot_stays_out_even_read_before_its_expiry() -> None:
    account = given(created(), granted("exp", "10", expires_at=after(days=1)), expired("exp", at=after(days=1)))
    assert balance_at(account, after(hours=1)).credit_balance == 0


def test_credits_expired_for_an_unknown_lot_changes_nothing() -> None:
    before = given(created(), granted("a", "10"))
    after_it = given(expired("nope", at=after(days=1)), account=before)
    assert wallet_of(after_it) == wallet_of(before)


def test_expiry_order_is_exact_to_the_microsecond_for_far_future_expiries() -> None:
    expiry = datetime(9000, 1, 1, tzinfo=UTC)
    account = given(
        created(),
        granted("later", "1", expires_at=expiry + timedelta(microseconds=1)),
        granted("sooner", "1", expires_at=expiry),
        debited("d", "1", at=after(minutes=1)),
    )
    assert draws_of(last_entry(account)) == [("sooner", D(1))]


FREE = {"FREE_CREDIT_GRANT", "SUBSCRIPTION_CREDIT_GRANT"}


@pytest.mark.parametrize("reason", get_args(GrantReason))
def test_every_grant_reason_lands_in_exactly_one_bucket_of_the_breakdown(reason: GrantReason) -> None:
    view = balance_at(given(created(), granted("a", "12.5", reason=reason)), after(hours=1))
    expected = (D("12.5"), D(0)) if reason in FREE else (D(0), D("12.5"))
    assert (view.free_credits, view.purchased_credits) == expected
    assert view.free_credits + view.purchased_credits == view.credit_balance == D("12.5")


def test_the_breakdown_counts_only_what_is_left_and_unexpired() -> None:
    reasons = get_args(GrantReason)
    grants = [granted(f"g{i}", f"{i + 1}", reason=r, priority=i) for i, r in enumerate(reasons)]
    account = given(
        created(),
        *grants,
        granted("gone", "100", reason="FREE_CREDIT_GRANT", expires_at=after(hours=1)),
        debited("d", "2.5", at=after(minutes=1)),
    )
    view = balance_at(account, after(hours=2))
    # g0 (FREE, 1) is drained, g1 (SUBSCRIPTION, 2) gives 1.5; the 5 purchased-side reasons hold 3+4+5+6+7.
    assert (view.free_credits, view.purchased_credits, view.credit_balance) == (D("0.5"), D(25), D("25.5"))


lot_spec = st.tuples(
    st.decimals(min_value=D("0.01"), max_value=D(100), places=2),
    st.none() | st.integers(min_value=-1, max_value=3),
    st.none() | st.integers(min_value=1, max_value=6),
    st.sampled_from(get_args(GrantReason)),
)


@settings(max_examples=200, deadline=None)
@for_all(
    lots=st.lists(lot_spec, max_size=8),
    requested=st.decimals(min_value=D("0.01"), max_value=D(500), places=2),
    now_hours=st.integers(min_value=0, max_value=4),
)
def test_any_debit_draws_min_of_requested_and_available_in_lot_order(
    lots: list[tuple[Decimal, int | None, int | None, GrantReason]], requested: Decimal, now_hours: int
) -> None:
    now = after(hours=now_hours, minutes=30)
    grants = [
        granted(f"l{i}", str(c), priority=p, expires_at=None if e is None else after(hours=e), reason=r)
        for i, (c, p, e, r) in enumerate(lots)
    ]
    account = given(created(), *grants)
    available = available_credits(wallet_of(account).lots, now)
    account = given(debited("d", str(requested), at=now), account=account)
    entry = last_entry(account)
    paid = sum((credits for _, credits in draws_of(entry)), D(0))
    assert paid == entry.credits == min(requested, available)
    assert entry.shortfall == requested - paid
    assert entry.credit_balance_after == available - paid == balance_at(account, now).credit_balance

    def spec_order(i: int) -> tuple[bool, int, bool, datetime, int]:
        _, p, e, _ = lots[i]
        return (p is None, p or 0, e is None, T0 if e is None else after(hours=e), i)

    usable = sorted((i for i, (_, _, e, _) in enumerate(lots) if e is None or after(hours=e) > now), key=spec_order)
    drawn = [lot_id for lot_id, _ in draws_of(entry)]
    assert drawn == [f"l{i}" for i in usable[: len(drawn)]]
    for lot_id, credits in draws_of(entry)[:-1]:
        assert credits == lots[int(lot_id[1:])][0]
    view = balance_at(account, now)
    assert view.free_credits + view.purchased_credits == view.credit_balance
    assert breakdown(wallet_of(account).lots, now) == (view.free_credits, view.purchased_credits)
