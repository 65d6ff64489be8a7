"""Arithmetic within the bounds is exact, the fold never raises on usage a caller can send, a wallet is bounded."""

import math
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from domain.bounds import MAX_WALLET_CREDITS
from domain.commands import TopUpWallet
from domain.errors import ValidationFailed
from domain.pricing import charge
from tests.unit.given import T0, after, balance_at, created, debited, given, granted, ledger_of, when
from tests.unit.usage_given import FEB, JAN, closed, package, price, usage

D = Decimal
BIG = "999999999999999.999999999999"  # 10^15 - 10^-12: the most credits one top-up may add
TOKENS = price("tokens", aggregation="SUM", field="t", amount="999999999999999.999999999999")


def test_a_balance_just_under_the_bound_reads_debits_and_settles_exactly() -> None:
    account = given(created(rate="999999999999999.999999999999"), granted("a", BIG))
    view = balance_at(account, T0)
    assert view.credit_balance == D(BIG)
    assert view.balance == D("999999999999999999999999998000.000000000000000000000001")  # BIG squared, exactly
    assert view.real_time_credit_balance == D(BIG)
    account = given(debited("d", "0.000000000001", at=after(seconds=1)), account=account)
    assert balance_at(account, after(seconds=2)).credit_balance == D("999999999999999.999999999998")
    account = given(usage("u1", after(days=1), TOKENS, properties={"t": "0.000000000001"}),
                    closed(JAN, FEB, at=after(days=40)), account=account)
    settled = ledger_of(account)[-1]
    assert (settled.reason, settled.credits) == ("CREDIT_ADJUSTMENT", D("0.000000000001"))  # 1e-12 * BIG / BIG


@pytest.mark.parametrize("value", ["9e999999", "1" * 1000, 2**64, 2**70, "1e16", "Infinity", "1e999999999"])
def test_a_sum_over_a_value_that_is_no_in_bounds_number_leaves_the_event_unpriced_and_never_raises(
    value: str | int,
) -> None:
    account = given(created(), granted("a", "10"), usage("u1", after(days=1), TOKENS, properties={"t": value}))
    period = next(iter(account.periods.values()))
    assert (period.events, period.unpriced_events, period.lines) == (1, 1, {})
    assert balance_at(account, after(days=2)).real_time_credit_balance == 10


def test_package_pricing_divides_exactly_at_any_in_bounds_size() -> None:
    odd = msgspec.structs.replace(package("1", "3"), package_size=D("0.000000000007"))
    packages = Fraction(D(BIG)) / Fraction(D("0.000000000007"))
    assert charge(odd, D(BIG)) == math.ceil(packages) != packages
    assert charge(package("2", "3", round_up=False), D(10)) == D(6)
    assert charge(package("2", "3"), D(10)) == D(8)


def top_up(credits: str) -> TopUpWallet:
    return TopUpWallet(event_id="e", wallet_id="w1", transaction_id="t", reason="PURCHASED_CREDIT_DIRECT",
                       credits=D(credits))


def test_a_top_up_beyond_the_wallet_bound_is_refused_and_one_up_to_it_is_not() -> None:
    account = given(created(), granted("a", BIG))
    with pytest.raises(ValidationFailed):
        when(account, top_up("0.000000000002"), after(seconds=1))
    events, after_top_up = when(account, top_up("0.000000000001"), after(seconds=1))
    assert balance_at(after_top_up, after(seconds=1)).credit_balance == MAX_WALLET_CREDITS
    assert len(events) == 1


def test_a_top_up_by_amount_beyond_the_bound_is_refused() -> None:
    account = given(created(rate="0.000000000001"))
    with pytest.raises(ValidationFailed):
        when(account, TopUpWallet(event_id="e", wallet_id="w1", transaction_id="t",
                                  reason="PURCHASED_CREDIT_DIRECT", amount=D("1000.000000000001")), after(seconds=1))


@settings(max_examples=300)
@hypothesis_given(st.one_of(st.text(max_size=80), st.integers(min_value=-(2**300), max_value=2**300), st.floats(),
                            st.from_regex(r"-?[0-9]{1,40}(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,12})?", fullmatch=True)))
def test_the_fold_never_raises_on_any_summed_property_value(value: str | int | float) -> None:
    account = given(created(), granted("a", "10"), usage("u1", after(days=1), TOKENS, properties={"t": value}))
    period = next(iter(account.periods.values()))
    assert period.events == 1
    view = balance_at(account, after(days=2))
    assert view.real_time_credit_balance <= 10 or view.current_period_usage < 0
