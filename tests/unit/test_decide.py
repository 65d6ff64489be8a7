"""decide(): the rules a command must pass before it becomes events."""

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.commands import (
    AnyCommand,
    CreateWallet,
    DebitWallet,
    FreezeWallet,
    TerminateWallet,
    TopUpWallet,
    UnfreezeWallet,
    UpdateWallet,
)
from domain.decide import decide
from domain.errors import AlreadyExists, InvalidOperation, NotFound, ValidationFailed
from domain.events import CreditsDebited, CreditsGranted, WalletCreated, WalletFrozen, WalletUnfrozen
from domain.settings import AlertSettings, AlertThreshold, AutoTopup
from domain.state import EMPTY_ACCOUNT
from tests.unit.given import (
    after,
    balance_at,
    created,
    frozen,
    given,
    granted,
    ledger_of,
    terminated,
    wallet_of,
    when,
)

D = Decimal
NOW = after(days=1)


def create(**overrides: Any) -> CreateWallet:
    fields: dict[str, Any] = {"event_id": "e-create", "wallet_id": "w1", "tenant_id": "t1",
                              "environment_id": "env1", "customer_id": "c1", "currency": "USD", "actor": "api"}
    return CreateWallet(**{**fields, **overrides})


def top_up(**overrides: Any) -> TopUpWallet:
    fields: dict[str, Any] = {"event_id": "e-top", "wallet_id": "w1", "transaction_id": "t-top",
                              "reason": "PURCHASED_CREDIT_DIRECT", "credits": D(10)}
    return TopUpWallet(**{**fields, **overrides})


def debit(credits: str, **overrides: Any) -> DebitWallet:
    fields: dict[str, Any] = {"event_id": "e-debit", "wallet_id": "w1", "transaction_id": "t-debit"}
    return DebitWallet(credits=D(credits), **{**fields, **overrides})


def test_creating_a_wallet_yields_one_wallet_created_with_top_up_rate_defaulting_to_the_rate() -> None:
    events, account = when(EMPTY_ACCOUNT, create(conversion_rate=D("2.5"), name="main"), NOW)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, WalletCreated)
    assert (event.id, event.at, event.wallet_id, event.currency, event.wallet_type) == (
        "e-create", NOW, "w1", "USD", "PRE_PAID")
    assert (event.conversion_rate, event.topup_conversion_rate, event.name, event.created_by) == (
        D("2.5"), D("2.5"), "main", "api")
    assert wallet_of(account).status == "active"


def test_initial_credits_become_a_free_credit_grant_lot_of_the_same_event() -> None:
    command = create(initial_credits=D("25.5"), initial_credits_expire_at=after(days=30),
                     initial_transaction_id="t-init")
    events, account = when(EMPTY_ACCOUNT, command, NOW)
    assert len(events) == 1
    created_event = events[0]
    assert isinstance(created_event, WalletCreated)
    assert (created_event.initial_credits, created_event.initial_transaction_id) == (D("25.5"), "t-init")
    lot = wallet_of(account).lots[0]
    assert (lot.id, lot.granted, lot.reason, lot.expires_at) == ("t-init", D("25.5"), "FREE_CREDIT_GRANT",
                                                                 after(days=30))
    entry = ledger_of(account)[0]
    assert (entry.event_id, entry.credit_balance_before, entry.credit_balance_after) == ("e-create", 0, D("25.5"))
    view = balance_at(account, NOW)
    assert (view.credit_balance, view.free_credits, view.purchased_credits) == (D("25.5"), D("25.5"), D(0))


def test_an_active_pre_paid_wallet_in_the_same_currency_blocks_another() -> None:
    with pytest.raises(AlreadyExists) as caught:
        decide(given(created("w0")), create(), NOW)
    assert caught.value.details == {"wallet_id": "w0"}


@pytest.mark.parametrize(
    ("existing", "command"),
    [
        (created("w0", currency="EUR"), create()),
        (created("w0", wallet_type="POST_PAID"), create()),
        (created("w0"), create(wallet_type="POST_PAID")),
    ],
)
def test_other_currencies_and_post_paid_wallets_do_not_block(existing: WalletCreated, command: CreateWallet) -> None:
    assert [type(e) for e in decide(given(existing), command, NOW)] == [WalletCreated]


def test_a_terminated_wallet_does_not_block_a_new_one() -> None:
    account = given(created("w0"), terminated(wallet_id="w0"))
    assert [type(e) for e in decide(account, create(), NOW)] == [WalletCreated]


@pytest.mark.parametrize(
    "command",
    [
        create(conversion_rate=D(0)),
        create(conversion_rate=D("-1")),
        create(topup_conversion_rate=D("-0.5")),
        create(initial_credits=D("-1")),
        create(initial_credits=D(5), initial_credits_expire_at=NOW),
        create(alert_settings=AlertSettings(alert_enabled=True)),
        create(alert_settings=AlertSettings(warning=AlertThreshold(threshold=D(5)))),
        create(auto_topup=AutoTopup(enabled=True, amount=D(10))),
        create(auto_topup=AutoTopup(enabled=True, threshold=D(1), amount=D(0))),
    ],
)
def test_invalid_wallets_are_refused(command: CreateWallet) -> None:
    with pytest.raises(ValidationFailed):
        decide(EMPTY_ACCOUNT, command, NOW)


def test_a_zero_top_up_rate_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        decide(EMPTY_ACCOUNT, create(conversion_rate=D(2), topup_conversion_rate=D(0)), NOW)


def test_a_top_up_by_credits_becomes_one_lot_with_its_terms() -> None:
    command = top_up(credits=D("12.34"), reason="PURCHASED_CREDIT_BONUS", priority=2, expires_at=after(days=9),
                     idempotency_key="k1", actor="api")
    events, account = when(given(created()), command, NOW)
    assert events == [CreditsGranted(
        id="e-top", at=NOW, wallet_id="w1", transaction_id="t-top", credits=D("12.34"),
        reason="PURCHASED_CREDIT_BONUS", priority=2, expires_at=after(days=9), idempotency_key="k1", created_by="api",
    )]
    assert balance_at(account, NOW).purchased_credits == D("12.34")


@pytest.mark.parametrize(("rate", "topup_rate", "amount", "credits"),
                         [("1", "4", "100", "25"), ("2", None, "5", "2.5"), ("1", "3", "1", "0.333333333333")])
def test_a_top_up_by_amount_converts_at_the_top_up_rate(
    rate: str, topup_rate: str | None, amount: str, credits: str
) -> None:
    events = decide(given(created(rate=rate, topup_rate=topup_rate)), top_up(credits=None, amount=D(amount)), NOW)
    assert isinstance(events[0], CreditsGranted)
    assert events[0].credits == D(credits)


@pytest.mark.parametrize(
    "command",
    [
        top_up(credits=D(0)), top_up(credits=D("-1")), top_up(credits=None, amount=D(0)),
        top_up(credits=None, amount=D("-3")), top_up(credits=None, amount=None),
        top_up(expires_at=NOW), top_up(expires_at=after(hours=1)),
    ],
)
def test_invalid_top_ups_are_refused(command: TopUpWallet) -> None:
    with pytest.raises(ValidationFailed):
        decide(given(created()), command, NOW)


def test_an_expiry_a_microsecond_ahead_is_accepted() -> None:
    events = decide(given(created()), top_up(expires_at=after(days=1, micros=1)), NOW)
    assert [type(e) for e in events] == [CreditsGranted]


@pytest.mark.parametrize(
    ("history", "command"),
    [
        ((created(), terminated()), top_up()),
        ((created(), frozen()), top_up()),
        ((created(), granted("a", "10"), terminated()), debit("1")),
        ((created(), granted("a", "10"), frozen()), debit("1")),
        ((created(), terminated()), TerminateWallet(event_id="e", wallet_id="w1", transaction_id="t")),
        ((created(), terminated()), FreezeWallet(event_id="e", wallet_id="w1")),
        ((created(), terminated()), UpdateWallet(event_id="e", wallet_id="w1", name="x")),
    ],
)
def test_closed_or_frozen_wallets_refuse_what_they_cannot_do(history: tuple[Any, ...], command: AnyCommand) -> None:
    with pytest.raises(InvalidOperation):
        decide(given(*history), command, NOW)


def test_unfreezing_lets_top_ups_through_again() -> None:
    _, account = when(given(created(), frozen()), UnfreezeWallet(event_id="e-u", wallet_id="w1"), NOW)
    assert [type(e) for e in decide(account, top_up(), NOW)] == [CreditsGranted]


def test_freezing_a_frozen_or_unfreezing_an_active_wallet_is_a_no_op() -> None:
    assert decide(given(created(), frozen()), FreezeWallet(event_id="e", wallet_id="w1"), NOW) == []
    assert decide(given(created()), UnfreezeWallet(event_id="e", wallet_id="w1"), NOW) == []
    assert decide(given(created()), FreezeWallet(event_id="e", wallet_id="w1"), NOW) == [
        WalletFrozen(id="e", at=NOW, wallet_id="w1")]
    assert decide(given(created(), frozen()), UnfreezeWallet(event_id="e", wallet_id="w1"), NOW) == [
        WalletUnfrozen(id="e", at=NOW, wallet_id="w1")]


def test_a_debit_of_exactly_the_available_credits_is_accepted() -> None:
    events, account = when(given(created(), granted("a", "7.5"), granted("b", "2.5")), debit("10"), NOW)
    assert events == [CreditsDebited(id="e-debit", at=NOW, wallet_id="w1", transaction_id="t-debit",
                                     credits=D(10), reason="MANUAL_BALANCE_DEBIT")]
    assert balance_at(account, NOW).credit_balance == 0


def test_a_debit_beyond_the_available_credits_is_refused() -> None:
    with pytest.raises(InvalidOperation) as caught:
        decide(given(created(), granted("a", "10")), debit("10.01"), NOW)
    assert caught.value.details == {"requested": "10.01", "available": "10"}


def test_expired_lots_are_not_available_to_a_debit() -> None:
    account = given(created(), granted("a", "10", expires_at=NOW), granted("b", "3"))
    with pytest.raises(InvalidOperation) as caught:
        decide(account, debit("4"), NOW)
    assert caught.value.details == {"requested": "4", "available": "3"}


@pytest.mark.parametrize("credits", ["0", "-1"])
def test_non_positive_debits_are_refused(credits: str) -> None:
    with pytest.raises(ValidationFailed):
        decide(given(created(), granted("a", "10")), debit(credits), NOW)


@pytest.mark.parametrize(
    "command",
    [
        top_up(wallet_id="nope"), debit("1", wallet_id="nope"),
        TerminateWallet(event_id="e", wallet_id="nope", transaction_id="t"),
        FreezeWallet(event_id="e", wallet_id="nope"), UnfreezeWallet(event_id="e", wallet_id="nope"),
        UpdateWallet(event_id="e", wallet_id="nope", name="x"),
    ],
)
def test_an_unknown_wallet_is_not_found(command: AnyCommand) -> None:
    with pytest.raises(NotFound) as caught:
        decide(given(created()), command, NOW)
    assert caught.value.details == {"wallet_id": "nope"}


def test_terminating_debits_what_is_left_through_the_fold() -> None:
    command = TerminateWallet(event_id="e-t", wallet_id="w1", transaction_id="t-t", actor="ops")
    _, account = when(given(created(), granted("a", "4")), command, NOW)
    assert wallet_of(account).status == "closed"
    assert ledger_of(account)[-1].credits == D(4)


def test_updating_settings_validates_them() -> None:
    command = UpdateWallet(event_id="e", wallet_id="w1", alert_settings=AlertSettings(alert_enabled=True))
    with pytest.raises(ValidationFailed):
        decide(given(created()), command, NOW)


def test_decide_depends_only_on_its_inputs() -> None:
    account = given(created(), granted("a", "10"))
    now: datetime = after(days=2)
    assert decide(account, debit("3"), now) == decide(account, debit("3"), now)
