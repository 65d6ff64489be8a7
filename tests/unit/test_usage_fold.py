"""Usage in the fold: priced into open periods, pending charges in the balance, settlement, invoices, late usage."""

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.events import AnyEvent, WalletCreated
from domain.settings import PriceType
from domain.state import Invoice
from domain.usage import pending_charges
from tests.unit.given import (
    after,
    balance_at,
    debited,
    draws_of,
    expired,
    given,
    granted,
    ledger_of,
    terminated,
)
from tests.unit.usage_given import (
    FEB,
    JAN,
    JAN_INVOICE,
    MAR,
    closed,
    ledger_totals,
    paid,
    price,
    settlement_entry,
    tier,
    tiered,
    units,
    usage,
    wallet,
)

D = Decimal
MICRO = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
CALL = price("calls", amount="0.5")
JAN_KEY, FEB_KEY = JAN.isoformat(), FEB.isoformat()


def test_usage_is_priced_into_the_open_period_holding_its_timestamp() -> None:
    tokens = price("tokens", aggregation="SUM", field="t", amount="0.001")
    account = given(
        wallet(), granted("a", "100"),
        usage("u1", after(days=9), CALL, tokens, properties={"t": 250}),
        usage("u2", FEB - MICRO, CALL, tokens, properties={"t": "750"}),
        usage("u3", FEB, CALL, tokens),
    )
    jan, feb = account.periods[JAN_KEY], account.periods[FEB_KEY]
    assert (jan.start, jan.end, feb.start, feb.end) == (JAN, FEB, FEB, MAR)
    assert {k: (line.quantity, line.events) for k, line in jan.lines.items()} == {
        "calls": (D(2), 2), "tokens": (D(1000), 2)}
    assert {k: (line.quantity, line.events) for k, line in feb.lines.items()} == {"calls": (D(1), 1)}
    assert (jan.events, feb.events, account.usage_events) == (2, 1, 3)
    assert pending_charges(account, "USD") == D("2.5")
    view = balance_at(account, FEB + HOUR)
    assert (view.current_period_usage, view.real_time_balance, view.real_time_credit_balance) == (
        D("2.5"), D("97.5"), D("97.5"))


def test_tiers_price_each_periods_total_quantity_not_each_event() -> None:
    graduated = tiered("SLAB", tier("10", "1"), tier(None, "0.5"))
    account = given(*(usage(f"u{n}", after(days=n), graduated) for n in range(18)))
    assert pending_charges(account, "USD") == D(14)
    account = given(*(usage(f"f{n}", FEB + timedelta(days=n), graduated) for n in range(12)), account=account)
    assert pending_charges(account, "USD") == D(14) + D(11)


def test_late_usage_is_priced_by_the_version_in_force_at_its_timestamp() -> None:
    v1 = price("v1", lookup_key="calls", amount="0.5")
    v2 = price("v2", lookup_key="calls", amount="2", effective_from=FEB)
    account = given(
        usage("u", after(days=1), v1, v2), closed(JAN, FEB, at=FEB + HOUR),
        usage("late", after(days=20), v1, v2, at=FEB + 2 * HOUR), usage("feb", FEB, v1, v2, at=FEB + 2 * HOUR),
    )
    lines = account.periods[FEB_KEY].lines
    assert {k: line.quantity for k, line in lines.items()} == {"v1": D(1), "v2": D(1)}
    assert pending_charges(account, "USD") == D("2.5")


def test_an_event_no_price_can_measure_is_counted_but_unpriced() -> None:
    account = given(units("bad", "lots", after(days=1)), usage("other", after(days=2), CALL, event="upload"))
    period = account.periods[JAN_KEY]
    assert (period.events, period.unpriced_events, period.lines) == (2, 2, {})
    assert pending_charges(account, "USD") == D(0)


def test_pending_charges_count_only_in_the_wallets_currency() -> None:
    eur_call = price("calls-eur", currency="EUR", amount="0.4")
    account = given(
        wallet("w1"), wallet("w2", currency="EUR", rate="2"), granted("a", "10", wallet_id="w1"),
        granted("b", "10", wallet_id="w2"),
        *(usage(f"u{n}", after(days=n), CALL, eur_call) for n in range(3)),
    )
    usd, eur = balance_at(account, FEB, "w1"), balance_at(account, FEB, "w2")
    assert (usd.current_period_usage, usd.real_time_balance, usd.real_time_credit_balance) == (
        D("1.5"), D("8.5"), D("8.5"))
    assert (eur.balance, eur.current_period_usage, eur.real_time_balance, eur.real_time_credit_balance) == (
        D(20), D("1.2"), D("18.8"), D("9.4"))


@pytest.mark.parametrize(
    ("types", "usage_amount", "real_time", "real_time_credits"),
    [(("FIXED",), "0", "100", "50"), (("USAGE",), "12.5", "87.5", "43.75"), (("ALL",), "12.5", "87.5", "43.75"),
     (None, "12.5", "87.5", "43.75"), (("FIXED", "USAGE"), "12.5", "87.5", "43.75")],
)
def test_allowed_price_types_decide_whether_usage_is_a_pending_charge(
    types: tuple[PriceType, ...] | None, usage_amount: str, real_time: str, real_time_credits: str
) -> None:
    account = given(wallet(rate="2", types=types), granted("a", "50"), units("u", "25", after(days=3)))
    view = balance_at(account, after(days=4))
    assert (view.credit_balance, view.balance) == (D(50), D(100))
    assert (view.current_period_usage, view.real_time_balance, view.real_time_credit_balance) == (
        D(usage_amount), D(real_time), D(real_time_credits))


def test_a_post_paid_wallets_real_time_balance_ignores_usage() -> None:
    account = given(wallet(wallet_type="POST_PAID"), granted("a", "10"), units("u", "6", after(days=3)))
    view = balance_at(account, after(days=4))
    assert (view.balance, view.real_time_balance, view.real_time_credit_balance) == (D(10), D(10), D(10))


def test_usage_before_any_wallet_is_kept_and_counts_once_a_wallet_in_its_currency_exists() -> None:
    account = given(units("u1", "3", after(days=1)), units("u2", "1", after(days=2)))
    assert pending_charges(account, "USD") == D(2)
    account = given(wallet(at=after(days=3)), granted("a", "5", at=after(days=3)), account=account)
    view = balance_at(account, after(days=4))
    assert (view.current_period_usage, view.real_time_balance) == (D(2), D(3))


def test_settlement_draws_lots_in_lot_order_at_the_conversion_rate() -> None:
    account = given(
        wallet(rate="2"), granted("plain", "20"), granted("p2", "10", priority=2),
        granted("p1-late", "5", priority=1, expires_at=MAR),
        granted("p1-soon", "5", priority=1, expires_at=FEB + timedelta(days=14)),
        units("u", "60", after(days=9)), closed(JAN, FEB, at=FEB + HOUR),
    )
    entry = settlement_entry(account)
    assert (entry.id, entry.event_id, entry.type, entry.credits, entry.shortfall) == (
        "settle_inv_20250101T000000_USD", f"ev-close-{JAN_KEY}", "debit", D(15), D(0))
    assert draws_of(entry) == [("p1-soon", D(5)), ("p1-late", D(5)), ("p2", D(5))]
    assert (entry.credit_balance_before, entry.credit_balance_after, entry.at) == (D(40), D(25), FEB + HOUR)
    assert entry.metadata == {"period_start": JAN_KEY, "period_end": FEB_KEY, "invoice_id": JAN_INVOICE,
                              "late_events": "0"}
    assert (account.periods, account.invoices, account.closed_until) == ({}, {}, FEB)
    view = balance_at(account, FEB + 2 * HOUR)
    assert (view.credit_balance, view.balance, view.current_period_usage, view.real_time_balance) == (
        D(25), D(50), D(0), D(50))


def test_a_shortfall_becomes_an_invoice_that_payments_clear() -> None:
    account = given(wallet(rate="2"), granted("a", "10"), units("u", "70", after(days=9)),
                    closed(JAN, FEB, at=FEB + HOUR))
    assert (settlement_entry(account).credits, settlement_entry(account).shortfall) == (D(10), D("7.5"))
    assert account.invoices == {JAN_INVOICE: Invoice(
        id=JAN_INVOICE, currency="USD", period_start=JAN, period_end=FEB, amount=D(35), paid_from_wallet=D(20),
        unpaid=D(15))}
    view = balance_at(account, FEB + 2 * HOUR)
    assert (view.balance, view.current_period_usage, view.unpaid_invoices_amount) == (D(0), D(0), D(15))
    assert (view.real_time_balance, view.real_time_credit_balance) == (D(-15), D("-7.5"))
    account = given(paid(JAN_INVOICE, "5", at=FEB + 3 * HOUR), account=account)
    assert account.invoices[JAN_INVOICE].unpaid == D(10)
    assert balance_at(account, FEB + 4 * HOUR).real_time_balance == D(-10)
    account = given(paid(JAN_INVOICE, "10", at=FEB + 5 * HOUR), paid(JAN_INVOICE, "3", at=FEB + 6 * HOUR),
                    paid("inv_unknown", "3", at=FEB + 6 * HOUR), account=account)
    assert (account.invoices[JAN_INVOICE].unpaid, account.invoices[JAN_INVOICE].amount) == (D(0), D(35))
    view = balance_at(account, FEB + 7 * HOUR)
    assert (view.unpaid_invoices_amount, view.real_time_balance) == (D(0), D(0))


@pytest.mark.parametrize("payer", [wallet(types=("FIXED",)), wallet(wallet_type="POST_PAID")])
def test_usage_no_wallet_may_pay_is_invoiced_in_full_and_leaves_the_wallets_alone(payer: WalletCreated) -> None:
    eur_call = price("calls-eur", currency="EUR", amount="0.4")
    account = given(
        payer, granted("a", "100"),
        usage("u1", after(days=1), CALL, eur_call), closed(JAN, FEB, at=FEB + HOUR),
    )
    assert [e.id for e in ledger_of(account)] == ["a"]
    assert {k: (i.amount, i.paid_from_wallet, i.unpaid) for k, i in account.invoices.items()} == {
        "inv_20250101T000000_EUR": (D("0.4"), D(0), D("0.4")), JAN_INVOICE: (D("0.5"), D(0), D("0.5"))}


def test_closing_a_period_twice_changes_nothing_the_second_time() -> None:
    once = given(wallet(), granted("a", "3"), units("u", "8", after(days=2)), closed(JAN, FEB, at=FEB + HOUR),
                 units("f", "2", FEB + timedelta(days=1)))
    twice = given(closed(JAN, FEB, at=FEB + 2 * HOUR, event_id="ev-close-again"), account=once)
    assert (twice.wallets, twice.invoices, twice.periods, twice.closed_until) == (
        once.wallets, once.invoices, once.periods, once.closed_until)
    assert twice.invoices[JAN_INVOICE].unpaid == D(1)
    assert pending_charges(twice, "USD") == D(1)


def test_late_usage_is_charged_in_the_open_period_and_flagged() -> None:
    account = given(
        wallet(), granted("a", "1"), units("u", "1", after(days=2)), closed(JAN, FEB, at=FEB + HOUR),
        units("on-time", "1", FEB, at=FEB + 2 * HOUR),
        units("late", "1", after(days=19), at=FEB + 2 * HOUR),
        units("edge-late", "1", FEB - MICRO, at=FEB + 2 * HOUR),
    )
    feb = account.periods[FEB_KEY]
    assert (list(account.periods), feb.events, feb.late_events, feb.lines["units"].quantity) == (
        [FEB_KEY], 3, 2, D(3))
    account = given(closed(FEB, MAR, at=MAR + HOUR), account=account)
    entry = settlement_entry(account)
    assert (entry.credits, entry.shortfall, entry.metadata["late_events"]) == (D("0.5"), D(1), "2")
    invoice = account.invoices["inv_20250201T000000_USD"]
    assert (invoice.amount, invoice.paid_from_wallet, invoice.unpaid, invoice.late_events) == (
        D("1.5"), D("0.5"), D(1), 2)


def test_credits_that_expire_inside_the_open_period_do_not_pay_its_settlement() -> None:
    account = given(
        wallet(), granted("exp", "10", priority=0, expires_at=after(days=19)), granted("keep", "10"),
        units("u", "30", after(days=9)),
    )
    assert balance_at(account, after(days=19) - MICRO).real_time_balance == D(5)
    assert balance_at(account, after(days=19)).real_time_balance == D(-5)
    account = given(closed(JAN, FEB, at=FEB + HOUR), account=account)
    entry = settlement_entry(account)
    assert (draws_of(entry), entry.shortfall) == ([("keep", D(10))], D(5))
    assert account.invoices[JAN_INVOICE].unpaid == D(5)
    account = given(expired("exp", at=FEB + 2 * HOUR), account=account)
    assert ledger_totals(account) == {"granted": D(20), "CREDIT_ADJUSTMENT": D(10), "CREDIT_EXPIRED": D(10)}


def test_granted_less_debited_less_expired_is_the_credit_balance_after_every_event() -> None:
    history: list[AnyEvent] = [
        wallet(), granted("g1", "100", priority=1, expires_at=after(days=14)), granted("g2", "50"),
        granted("g3", "30", reason="FREE_CREDIT_GRANT", expires_at=FEB + timedelta(days=9)),
        debited("d", "20", at=after(days=4)), units("u1", "80", after(days=9)), expired("g1", at=after(days=14)),
        closed(JAN, FEB, at=FEB + HOUR), units("u2", "50", FEB + timedelta(days=4)),
        terminated("term", at=FEB + timedelta(days=19)), closed(FEB, MAR, at=MAR + HOUR),
    ]
    for n in range(2, len(history) + 1):
        account = given(*history[:n])
        totals, now = ledger_totals(account), history[n - 1].at
        credit_balance = balance_at(account, now).credit_balance
        assert totals["granted"] - sum(v for k, v in totals.items() if k != "granted") == credit_balance
        assert ledger_of(account)[-1].credit_balance_after == credit_balance
    assert totals == {"granted": D(180), "MANUAL_BALANCE_DEBIT": D(20), "CREDIT_EXPIRED": D(80),
                      "CREDIT_ADJUSTMENT": D(40), "WALLET_TERMINATION": D(40)}
    assert draws_of(settlement_entry(account)) == [("g3", D(30)), ("g2", D(10))]
    assert account.invoices["inv_20250201T000000_USD"].unpaid == D(25)


def test_a_settlement_the_wallet_can_cover_leaves_no_invoice_at_any_conversion_rate() -> None:
    account = given(wallet(rate="3"), granted("a", "100"), units("u", "20", after(days=9)),
                    closed(JAN, FEB, at=FEB + HOUR))
    assert account.invoices == {}
    assert balance_at(account, FEB + 2 * HOUR).unpaid_invoices_amount == D(0)
