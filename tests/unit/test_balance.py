"""The balance view: conversion rates, wallet types, termination, freezing, ledger balances, fold positions."""

from decimal import Decimal

import pytest

from domain.commands import TopUpWallet
from domain.events import WalletType
from tests.unit.given import (
    after,
    balance_at,
    created,
    debited,
    draws_of,
    expired,
    frozen,
    given,
    granted,
    last_entry,
    ledger_of,
    terminated,
    unfrozen,
    wallet_of,
    when,
)

D = Decimal


@pytest.mark.parametrize(
    ("rate", "credits", "balance"),
    [("2.5", "10", "25"), ("0.01", "12345.67", "123.4567"), ("3", "0.333333333333", "0.999999999999"),
     ("1", "87.5", "87.5")],
)
def test_balance_is_credits_times_conversion_rate(rate: str, credits: str, balance: str) -> None:
    view = balance_at(given(created(rate=rate), granted("a", credits)), after(hours=1))
    assert (view.credit_balance, view.balance) == (D(credits), D(balance))
    assert (view.real_time_balance, view.real_time_credit_balance) == (D(balance), D(credits))
    assert (view.current_period_usage, view.unpaid_invoices_amount) == (D(0), D(0))


def test_a_top_up_by_amount_converts_at_the_top_up_rate_and_the_balance_at_the_wallet_rate() -> None:
    account = given(created(rate="2", topup_rate="4"))
    command = TopUpWallet(event_id="e1", wallet_id="w1", transaction_id="t1", reason="PURCHASED_CREDIT_DIRECT",
                          amount=D("100"))
    events, account = when(account, command, after(minutes=1))
    assert [(type(e).__name__, getattr(e, "credits", None)) for e in events] == [("CreditsGranted", D(25))]
    view = balance_at(account, after(minutes=2))
    assert (view.credit_balance, view.balance, view.purchased_credits) == (D(25), D(50), D(25))


def test_an_inexact_top_up_by_amount_is_rounded_to_twelve_places_and_stays_consistent() -> None:
    account = given(created(rate="3"))
    command = TopUpWallet(event_id="e1", wallet_id="w1", transaction_id="t1", reason="PURCHASED_CREDIT_DIRECT",
                          amount=D("10"))
    _, account = when(account, command, after(minutes=1))
    view = balance_at(account, after(minutes=2))
    assert view.credit_balance == D("3.333333333333")
    assert view.balance == view.real_time_balance == D("9.999999999999")
    assert view.real_time_credit_balance == D("3.333333333333")


@pytest.mark.parametrize("wallet_type", ["PRE_PAID", "POST_PAID"])
def test_pre_paid_and_post_paid_wallets_read_the_same_credits(wallet_type: WalletType) -> None:
    account = given(
        created(wallet_type=wallet_type, rate="1.5"),
        granted("a", "40"),
        debited("d", "15", at=after(minutes=1)),
    )
    view = balance_at(account, after(hours=1))
    assert (view.credit_balance, view.balance) == (D(25), D("37.5"))
    assert (view.current_period_usage, view.unpaid_invoices_amount) == (D(0), D(0))
    assert (view.real_time_balance, view.real_time_credit_balance) == (D("37.5"), D(25))
    assert wallet_of(account).wallet_type == wallet_type


def test_termination_debits_every_available_credit_and_closes_the_wallet() -> None:
    account = given(
        created(rate="2"),
        granted("a", "10", priority=1),
        granted("b", "5", expires_at=after(days=3)),
        granted("gone", "7", expires_at=after(hours=1)),
        debited("d", "3", at=after(minutes=30)),
        terminated("term", at=after(hours=2)),
    )
    wallet = wallet_of(account)
    assert wallet.status == "closed"
    assert (wallet.updated_at, wallet.updated_by) == (after(hours=2), "ops")
    entry = last_entry(account)
    assert (entry.id, entry.type, entry.reason, entry.credits) == ("term", "debit", "WALLET_TERMINATION", D(12))
    assert (entry.credit_balance_before, entry.credit_balance_after) == (D(12), D(0))
    assert draws_of(entry) == [("a", D(7)), ("b", D(5))]
    for now in (after(hours=2), after(days=1), after(days=30)):
        view = balance_at(account, now)
        assert (view.credit_balance, view.balance, view.real_time_balance) == (D(0), D(0), D(0))
        assert (view.free_credits, view.purchased_credits) == (D(0), D(0))


def test_terminating_an_empty_wallet_closes_it_without_a_ledger_entry() -> None:
    account = given(created(), terminated(at=after(hours=1)))
    assert wallet_of(account).status == "closed"
    assert ledger_of(account) == ()
    assert balance_at(account, after(hours=2)).balance == 0


def test_freezing_and_unfreezing_change_the_status_and_never_the_balance() -> None:
    account = given(created(), granted("a", "10"), frozen(at=after(hours=1)))
    assert wallet_of(account).status == "frozen"
    assert (wallet_of(account).updated_at, wallet_of(account).updated_by) == (after(hours=1), "ops")
    assert balance_at(account, after(hours=2)).credit_balance == D(10)
    account = given(unfrozen(at=after(hours=3)), account=account)
    assert wallet_of(account).status == "active"
    assert wallet_of(account).updated_at == after(hours=3)
    assert balance_at(account, after(hours=4)).credit_balance == D(10)
    assert len(ledger_of(account)) == 1


def test_every_ledger_entry_carries_the_credit_balance_before_and_after_it() -> None:
    account = given(
        created(),
        granted("g1", "10", at=after(minutes=1)),
        granted("g2", "5.5", priority=1, at=after(minutes=2)),
        debited("d1", "12", at=after(minutes=3)),
        granted("g3", "0.25", at=after(minutes=4)),
        debited("d2", "4", at=after(minutes=5)),
    )
    rows = [
        (e.id, e.type, e.credits, e.credit_balance_before, e.credit_balance_after, e.shortfall)
        for e in ledger_of(account)
    ]
    assert rows == [
        ("g1", "credit", D(10), D(0), D(10), D(0)),
        ("g2", "credit", D("5.5"), D(10), D("15.5"), D(0)),
        ("d1", "debit", D(12), D("15.5"), D("3.5"), D(0)),
        ("g3", "credit", D("0.25"), D("3.5"), D("3.75"), D(0)),
        ("d2", "debit", D("3.75"), D("3.75"), D(0), D("0.25")),
    ]
    assert wallet_of(account).balance_updated_at == after(minutes=5)


def test_a_grant_records_its_priority_and_expiry_in_the_ledger() -> None:
    entry = last_entry(given(created(), granted("g", "3", priority=4, expires_at=after(days=7))))
    assert (entry.type, entry.reason, entry.priority, entry.expires_at) == (
        "credit", "PURCHASED_CREDIT_DIRECT", 4, after(days=7))


def test_an_expiry_that_arrives_before_the_lots_expiry_changes_nothing() -> None:
    base = given(created(), granted("a", "10", expires_at=after(days=1)), granted("b", "5"))
    early = given(expired("a", at=after(hours=23)), account=base)
    assert early.wallets == base.wallets
    assert balance_at(early, after(hours=23)).credit_balance == D(15)


def test_an_expiry_entry_removes_the_lots_rest_from_a_balance_that_already_excluded_it() -> None:
    account = given(
        created(), granted("a", "10", expires_at=after(days=1)), granted("b", "5"), expired("a", at=after(days=1))
    )
    entry = last_entry(account)
    assert (entry.reason, entry.credits) == ("CREDIT_EXPIRED", D(10))
    assert (entry.credit_balance_before, entry.credit_balance_after) == (D(5), D(5))


def test_events_about_a_wallet_the_account_does_not_hold_change_nothing_but_the_position() -> None:
    base = given(created(), granted("a", "10"))
    account = given(granted("x", "99", wallet_id="w9"), debited("y", "1", wallet_id="w9"), account=base)
    assert account.wallets == base.wallets
    assert (account.position, account.applied) == ("4-0", 4)


def test_the_fold_records_its_position_and_count() -> None:
    account = given(created(), granted("a", "1"), granted("b", "2"))
    assert (account.position, account.applied) == ("3-0", 3)
    assert given(created(), granted("a", "1"), granted("b", "2")) == account


def test_each_wallet_of_an_account_has_its_own_lots() -> None:
    account = given(
        created("w1", currency="USD"), created("w2", currency="EUR", rate="0.5"),
        granted("a", "10", wallet_id="w1"), granted("b", "8", wallet_id="w2"), debited("d", "3", wallet_id="w2"),
    )
    assert balance_at(account, after(hours=1), "w1").balance == D(10)
    view = balance_at(account, after(hours=1), "w2")
    assert (view.credit_balance, view.balance) == (D(5), D("2.5"))
