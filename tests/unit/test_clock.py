"""The clock: which periods close and which lots expire at an instant, with deterministic ids, and when next."""

from datetime import timedelta
from decimal import Decimal

from domain.clock import due_events, next_due
from domain.events import CreditsExpired, PeriodClosed
from domain.state import EMPTY_ACCOUNT, Account
from tests.unit.given import after, balance_at, created, debited, expired, given, granted, ledger_of
from tests.unit.usage_given import FEB, JAN, MAR, closed, price, usage

D = Decimal
GRACE = timedelta(hours=1)
MICRO = timedelta(microseconds=1)
CALL = price(amount="1")


def with_january_usage() -> Account:
    return given(created(), granted("a", "10"), usage("u1", after(days=3), CALL))


def test_a_period_closes_once_its_end_plus_grace_has_come_and_not_a_microsecond_before() -> None:
    account = with_january_usage()
    assert due_events(account, FEB + GRACE - MICRO, GRACE) == []
    assert due_events(account, FEB + GRACE, GRACE) == [
        PeriodClosed(id="clock:close:2025-01-01T00:00:00+00:00", at=FEB + GRACE, period_start=JAN, period_end=FEB)
    ]


def test_a_lot_expires_at_its_expiry_instant_and_not_before() -> None:
    account = given(created(), granted("a", "10", expires_at=after(days=5)), granted("b", "3"))
    assert due_events(account, after(days=5) - MICRO, GRACE) == []
    assert due_events(account, after(days=5), GRACE) == [
        CreditsExpired(id="clock:expire:w1:a", at=after(days=5), wallet_id="w1", lot_id="a", transaction_id="exp_a")
    ]


def test_several_due_events_come_closes_first_by_period_then_expiries_by_wallet() -> None:
    account = given(
        created("w2"), created("w1"),
        granted("late", "1", expires_at=after(days=20), wallet_id="w2"),
        granted("soon", "1", expires_at=after(days=2), wallet_id="w1"),
        usage("feb", FEB + timedelta(days=1), CALL), usage("jan", after(days=1), CALL),
    )
    events = due_events(account, MAR + GRACE, GRACE)
    assert [e.id for e in events] == [
        "clock:close:2025-01-01T00:00:00+00:00", "clock:close:2025-02-01T00:00:00+00:00",
        "clock:expire:w1:soon", "clock:expire:w2:late",
    ]


def test_ids_depend_on_what_is_due_not_on_when_it_is_asked() -> None:
    account = given(created(), granted("a", "10", expires_at=after(days=2)), usage("u1", after(days=1), CALL))
    first = due_events(account, FEB + GRACE, GRACE)
    again = due_events(account, FEB + GRACE, GRACE)
    later = due_events(account, MAR, GRACE)
    assert first == again
    assert [e.id for e in later] == [e.id for e in first] == ["clock:close:2025-01-01T00:00:00+00:00",
                                                              "clock:expire:w1:a"]


def test_nothing_is_due_for_expired_or_used_up_lots_or_closed_periods() -> None:
    account = given(
        created(),
        granted("gone", "5", expires_at=after(days=1)),
        granted("spent", "2", priority=0, expires_at=after(days=2)),
        granted("forever", "4"),
        debited("d", "2", at=after(hours=1)),
        expired("gone", at=after(days=1)),
        usage("u1", after(days=3), CALL),
        closed(JAN, FEB, at=FEB + GRACE),
    )
    assert due_events(account, MAR, GRACE) == []
    assert next_due(account, GRACE) is None


def test_next_due_is_the_earliest_close_or_expiry() -> None:
    account = with_january_usage()
    assert next_due(account, GRACE) == FEB + GRACE
    sooner = given(granted("b", "1", expires_at=after(days=9)), account=account)
    assert next_due(sooner, GRACE) == after(days=9)
    assert next_due(sooner, timedelta(0)) == after(days=9)
    assert next_due(given(granted("c", "1", expires_at=MAR), account=account), timedelta(0)) == FEB


def test_next_due_is_none_when_nothing_is_pending() -> None:
    assert next_due(EMPTY_ACCOUNT, GRACE) is None
    assert next_due(given(created(), granted("a", "10")), GRACE) is None
    assert due_events(given(created(), granted("a", "10")), MAR, GRACE) == []


def test_applying_the_due_events_leaves_nothing_due() -> None:
    account = given(
        created(),
        granted("a", "10", expires_at=after(days=45)),
        granted("b", "5", expires_at=after(days=10)),
        usage("u1", after(days=3), CALL), usage("u2", after(days=4), CALL),
    )
    now = FEB + timedelta(days=15)
    events = due_events(account, now, GRACE)
    assert [type(e).__name__ for e in events] == ["PeriodClosed", "CreditsExpired", "CreditsExpired"]
    account = given(*events, account=account)
    assert due_events(account, now, GRACE) == []
    assert next_due(account, GRACE) is None
    # Both lots expired before the close ran, so neither paid: the 2 of usage is left unpaid.
    view = balance_at(account, now)
    assert (view.credit_balance, view.current_period_usage, view.unpaid_invoices_amount) == (D(0), D(0), D(2))
    assert [(e.id, e.credits, e.shortfall) for e in ledger_of(account)[2:]] == [
        ("settle_inv_20250101T000000_USD", D(0), D(2)), ("exp_a", D(10), D(0)), ("exp_b", D(5), D(0)),
    ]
