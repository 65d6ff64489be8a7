"""Alert transitions and auto top-up arming in the fold (domain.watch via domain.fold.advance), and the clock's top-up.

Given a history folded with `advance` at positions 1-0, 2-0, …; when one more event is folded; then the transitions
`transitions(before, after, position, at)` finds, and the wallet's auto top-up trigger.
"""

from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from domain.clock import due_events, next_due
from domain.commands import CreateWallet
from domain.decide import decide
from domain.events import AnyEvent, CreditsGranted, CreditsPaid, WalletCreated, WalletType, WalletUpdated
from domain.settings import AlertCondition, AlertSettings, AlertState, AlertThreshold, AutoTopup
from domain.state import EMPTY_ACCOUNT, Account
from domain.watch import AlertTransition, auto_topup_key, transitions
from tests.unit.given import (
    T0,
    after,
    balance_at,
    created,
    debited,
    expired,
    frozen,
    given,
    granted,
    ledger_of,
    terminated,
    unfrozen,
    wallet_of,
)
from tests.unit.usage_given import FEB, JAN, closed, units

D = Decimal
GRACE = timedelta(hours=1)
MICRO = timedelta(microseconds=1)
METRICS = ("ongoing_balance", "credit_balance")
RATES = ("1", "4", "0.5", "0.03")


def levels(condition: AlertCondition, critical: str | None, warning: str | None = None, info: str | None = None,
           *, enabled: bool = True) -> AlertSettings:
    def level(value: str | None) -> AlertThreshold | None:
        return None if value is None else AlertThreshold(threshold=D(value), condition=condition)

    return AlertSettings(alert_enabled=enabled, critical=level(critical), warning=level(warning), info=level(info))


BELOW = levels("below", "10", "20", "30")
ABOVE = levels("above", "100", "80", "60")


def alerting(settings: AlertSettings | None, *, rate: str = "1", wallet_type: WalletType = "PRE_PAID",
             topup: AutoTopup | None = None) -> WalletCreated:
    return msgspec.structs.replace(created(rate=rate, wallet_type=wallet_type, alerts=settings), auto_topup=topup)


def topping(threshold: str = "10", amount: str = "50", *, cooldown: int = 0, invoicing: bool = False,
            rate: str = "1", enabled: bool = True, alerts: AlertSettings | None = None) -> WalletCreated:
    return alerting(alerts, rate=rate, topup=AutoTopup(enabled=enabled, threshold=D(threshold), amount=D(amount),
                                                       invoicing=invoicing, cooldown_seconds=cooldown))


def next_position(account: Account) -> str:
    return f"{int(account.position.split('-')[0]) + 1}-0"


def when(account: Account, event: AnyEvent) -> tuple[Account, list[AlertTransition]]:
    """Fold one event at the next position; return the account and the transitions it caused."""
    position = next_position(account)
    folded = given(event, account=account)  # `advance` at `position`, its ledger changes kept
    return folded, transitions(account, folded, position, event.at)


def watched(*events: AnyEvent, account: Account = EMPTY_ACCOUNT) -> tuple[Account, list[AlertTransition]]:
    """Fold a history event by event; return the account and every transition, in order."""
    found: list[AlertTransition] = []
    for event in events:
        account, caused = when(account, event)
        found.extend(caused)
    return account, found


def named(found: list[AlertTransition]) -> list[tuple[str, str, str, str]]:
    return [(t.name, t.old, t.new, t.position) for t in found]


def name_of(metric: str, old: AlertState, new: AlertState) -> str:
    if new == "in_alarm":
        return f"wallet.{metric}.dropped"
    if old == "in_alarm":
        return f"wallet.{metric}.recovered"
    return f"wallet.{metric}.{new}"


def move(start: str, end: str, at: datetime) -> AnyEvent:
    """The event that takes a wallet holding `start` credits to `end` credits."""
    delta = D(end) - D(start)
    return granted("more", str(delta), at=at) if delta > 0 else debited("less", str(-delta), at=at)


def holding(settings: AlertSettings, credits: str, rate: str) -> Account:
    account, _ = watched(alerting(settings, rate=rate), granted("a", credits))
    return account


# Below thresholds (critical 10 < warning 20 < info 30), every band and every inclusive edge, up and down.
BELOW_MOVES = [
    ("50", "30.01", None), ("50", "30", ("ok", "info")), ("50", "20.01", ("ok", "info")),
    ("50", "20", ("ok", "warning")), ("50", "10.01", ("ok", "warning")), ("50", "10", ("ok", "in_alarm")),
    ("50", "0", ("ok", "in_alarm")),
    ("25", "30", None), ("25", "20.01", None), ("25", "30.01", ("info", "ok")), ("25", "20", ("info", "warning")),
    ("25", "10", ("info", "in_alarm")),
    ("15", "20", None), ("15", "10.01", None), ("15", "20.01", ("warning", "info")), ("15", "31", ("warning", "ok")),
    ("15", "10", ("warning", "in_alarm")), ("15", "9.99", ("warning", "in_alarm")),
    ("5", "10", None), ("5", "0", None), ("5", "10.01", ("in_alarm", "warning")),
    ("5", "20.01", ("in_alarm", "info")), ("5", "30.01", ("in_alarm", "ok")),
]
# Above thresholds (critical 100 > warning 80 > info 60).
ABOVE_MOVES = [
    ("50", "59.99", None), ("50", "60", ("ok", "info")), ("50", "80", ("ok", "warning")),
    ("50", "100", ("ok", "in_alarm")), ("50", "250", ("ok", "in_alarm")),
    ("70", "79.99", None), ("70", "59.99", ("info", "ok")), ("70", "80", ("info", "warning")),
    ("90", "99.99", None), ("90", "60", ("warning", "info")), ("90", "100", ("warning", "in_alarm")),
    ("150", "100", None), ("150", "99.99", ("in_alarm", "warning")), ("150", "79.99", ("in_alarm", "info")),
    ("150", "59.99", ("in_alarm", "ok")),
]
THRESHOLD_OF = {"in_alarm": "critical", "warning": "warning", "info": "info"}


def expected_transitions(settings: AlertSettings, end: str, change: tuple[AlertState, AlertState] | None,
                         position: str, at: datetime) -> list[AlertTransition]:
    if change is None:
        return []
    old, new = change
    level = getattr(settings, THRESHOLD_OF[new if new != "ok" else old])
    return [AlertTransition(wallet_id="w1", metric=metric, old=old, new=new, value=end, threshold=str(level.threshold),
                            position=position, at=at) for metric in METRICS]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("settings", "start", "end", "change"),
                         [(BELOW, *m) for m in BELOW_MOVES] + [(ABOVE, *m) for m in ABOVE_MOVES])
def test_each_band_change_is_one_transition_per_metric_with_inclusive_edges_on_credits_not_money(
    settings: AlertSettings, start: str, end: str, change: tuple[AlertState, AlertState] | None, rate: str
) -> None:
    account = holding(settings, start, rate)
    at = after(hours=1)
    folded, found = when(account, move(start, end, at))
    assert found == expected_transitions(settings, end, change, "3-0", at)
    state = change[1] if change else wallet_of(account).ongoing_alert
    assert (wallet_of(folded).ongoing_alert, wallet_of(folded).credit_alert) == (state, state)
    assert balance_at(folded, at).balance == D(end) * D(rate)  # thresholds read credits, whatever the rate


@pytest.mark.parametrize(("old", "new", "name"), [
    ("ok", "in_alarm", "wallet.ongoing_balance.dropped"), ("info", "in_alarm", "wallet.ongoing_balance.dropped"),
    ("warning", "in_alarm", "wallet.ongoing_balance.dropped"),
    ("in_alarm", "ok", "wallet.ongoing_balance.recovered"), ("in_alarm", "warning", "wallet.ongoing_balance.recovered"),
    ("in_alarm", "info", "wallet.ongoing_balance.recovered"),
    ("ok", "warning", "wallet.ongoing_balance.warning"), ("info", "warning", "wallet.ongoing_balance.warning"),
    ("ok", "info", "wallet.ongoing_balance.info"), ("warning", "info", "wallet.ongoing_balance.info"),
    ("info", "ok", "wallet.ongoing_balance.ok"), ("warning", "ok", "wallet.ongoing_balance.ok"),
])
def test_a_transition_is_named_after_its_states(old: AlertState, new: AlertState, name: str) -> None:
    transition = AlertTransition(wallet_id="w1", metric="ongoing_balance", old=old, new=new, value="1",
                                 threshold="1", position="7-0", at=T0)
    assert transition.name == name == name_of("ongoing_balance", old, new)
    credit = msgspec.structs.replace(transition, metric="credit_balance")
    assert credit.name == name.replace("ongoing_balance", "credit_balance")
    assert (transition.key, credit.key) == ("w1:ongoing_balance:7-0", "w1:credit_balance:7-0")


def test_a_history_that_dips_and_recovers_emits_both_on_both_metrics_at_their_positions() -> None:
    _, found = watched(
        alerting(BELOW), granted("a", "100", at=after(minutes=1)), debited("d1", "60", at=after(minutes=2)),
        debited("d2", "35", at=after(minutes=3)), granted("b", "50", at=after(minutes=4)),
    )
    assert named(found) == [
        ("wallet.ongoing_balance.dropped", "ok", "in_alarm", "1-0"),  # a new wallet holds nothing
        ("wallet.credit_balance.dropped", "ok", "in_alarm", "1-0"),
        ("wallet.ongoing_balance.recovered", "in_alarm", "ok", "2-0"),
        ("wallet.credit_balance.recovered", "in_alarm", "ok", "2-0"),
        ("wallet.ongoing_balance.dropped", "ok", "in_alarm", "4-0"),  # 100 -> 40 stays ok; 40 -> 5 drops
        ("wallet.credit_balance.dropped", "ok", "in_alarm", "4-0"),
        ("wallet.ongoing_balance.recovered", "in_alarm", "ok", "5-0"),
        ("wallet.credit_balance.recovered", "in_alarm", "ok", "5-0"),
    ]
    assert [t.value for t in found[4:]] == ["5", "5", "55", "55"]
    assert [t.at for t in found[4:]] == [after(minutes=3)] * 2 + [after(minutes=4)] * 2


def test_usage_moves_only_the_ongoing_metric_and_a_debit_then_moves_both() -> None:
    # Rate 2: 50 credits are 100 USD; 140 units at 0.5 USD are 70 USD pending, so 15 credits real-time.
    account, _ = watched(alerting(levels("below", "20"), rate="2"), granted("a", "50"))
    account, found = when(account, units("u1", "140", after(hours=1)))
    assert named(found) == [("wallet.ongoing_balance.dropped", "ok", "in_alarm", "3-0")]
    assert (found[0].value, found[0].threshold) == ("15", "20")
    account, found = when(account, granted("b", "10", at=after(hours=2)))
    assert named(found) == [("wallet.ongoing_balance.recovered", "in_alarm", "ok", "4-0")]
    assert found[0].value == "25"
    account, found = when(account, debited("d", "45", at=after(hours=3)))
    assert named(found) == [("wallet.ongoing_balance.dropped", "ok", "in_alarm", "5-0"),
                            ("wallet.credit_balance.dropped", "ok", "in_alarm", "5-0")]
    assert [t.value for t in found] == ["-20", "15"]  # (15 x 2 - 70) / 2 real-time; 15 credits


def test_settling_a_period_moves_the_credit_metric_while_the_ongoing_one_already_counted_the_usage() -> None:
    account, found = watched(alerting(levels("below", "10")), granted("a", "50"), units("u1", "80", after(days=1)))
    assert named(found)[-1] == ("wallet.ongoing_balance.dropped", "ok", "in_alarm", "3-0")  # 50 - 40 USD = 10
    _, found = when(account, closed(JAN, FEB, at=FEB + GRACE))
    assert named(found) == [("wallet.credit_balance.dropped", "ok", "in_alarm", "4-0")]  # 40 credits debited
    assert found[0].value == "10"


def test_a_transition_carries_its_value_and_threshold_as_canonical_wire_decimals() -> None:
    settings = AlertSettings(alert_enabled=True, critical=AlertThreshold(threshold=D("10.0")))
    _, found = watched(alerting(settings), granted("a", "50"), debited("d", "49.9999999", at=after(hours=1)))
    assert [(t.value, t.threshold) for t in found[-2:]] == [("0.0000001", "10")] * 2


def test_usage_on_a_post_paid_wallet_changes_no_alert() -> None:
    account, _ = watched(alerting(levels("below", "20"), wallet_type="POST_PAID"), granted("a", "50"))
    _, found = when(account, units("u1", "1000", after(hours=1)))
    assert found == []


@pytest.mark.parametrize("event", [
    debited("d", "5", at=after(hours=1)), granted("b", "100", at=after(hours=1)),
    WalletUpdated(id="ev-rename", at=after(hours=1), wallet_id="w1", name="renamed"),
    units("u1", "2", after(hours=1)),
])
def test_no_transition_while_the_state_stays_in_its_band(event: AnyEvent) -> None:
    account = holding(BELOW, "50", "1")
    assert when(account, event)[1] == []
    in_alarm = holding(BELOW, "8", "1")
    if not isinstance(event, CreditsGranted):
        assert when(in_alarm, event)[1] == []


@pytest.mark.parametrize("settings", [None, levels("below", "10", "20", "30", enabled=False)])
def test_a_wallet_without_enabled_alerts_never_transitions(settings: AlertSettings | None) -> None:
    account, found = watched(alerting(settings), granted("a", "100"), debited("d", "100", at=after(hours=1)),
                             granted("b", "5", at=after(hours=2)))
    assert found == []
    assert (wallet_of(account).ongoing_alert, wallet_of(account).credit_alert) == ("ok", "ok")


def test_enabling_alerts_on_a_low_wallet_drops_and_disabling_them_recovers_at_the_update() -> None:
    account = holding(levels("below", "10", enabled=False), "5", "1")
    account, found = when(account, WalletUpdated(id="ev-on", at=after(hours=1), wallet_id="w1",
                                                 alert_settings=levels("below", "10")))
    assert named(found) == [("wallet.ongoing_balance.dropped", "ok", "in_alarm", "3-0"),
                            ("wallet.credit_balance.dropped", "ok", "in_alarm", "3-0")]
    _, found = when(account, WalletUpdated(id="ev-off", at=after(hours=2), wallet_id="w1",
                                           alert_settings=levels("below", "10", enabled=False)))
    assert named(found) == [("wallet.ongoing_balance.recovered", "in_alarm", "ok", "4-0"),
                            ("wallet.credit_balance.recovered", "in_alarm", "ok", "4-0")]


def test_an_expiring_lot_drops_the_alert_at_the_expiry_event() -> None:
    account, _ = watched(alerting(levels("below", "10")), granted("a", "50", expires_at=after(days=1)),
                         granted("b", "8"))
    _, found = when(account, expired("a", at=after(days=1)))
    assert named(found) == [("wallet.ongoing_balance.dropped", "ok", "in_alarm", "4-0"),
                            ("wallet.credit_balance.dropped", "ok", "in_alarm", "4-0")]
    assert found[0].value == "8"


def test_two_wallets_transition_independently() -> None:
    account, found = watched(
        alerting(levels("below", "10")), granted("a", "50"),
        msgspec.structs.replace(created("w2", currency="EUR", alerts=levels("below", "10")), id="ev-create-w2"),
        granted("b", "50", wallet_id="w2"), debited("d", "45", at=after(hours=1), wallet_id="w2"),
    )
    assert [(t.wallet_id, t.name, t.position) for t in found[4:]] == [
        ("w2", "wallet.ongoing_balance.dropped", "3-0"), ("w2", "wallet.credit_balance.dropped", "3-0"),
        ("w2", "wallet.ongoing_balance.recovered", "4-0"), ("w2", "wallet.credit_balance.recovered", "4-0"),
        ("w2", "wallet.ongoing_balance.dropped", "5-0"), ("w2", "wallet.credit_balance.dropped", "5-0"),
    ]
    assert wallet_of(account).ongoing_alert == "ok"


def create_command(initial: str, *, alerts: AlertSettings | None = None,
                   topup: AutoTopup | None = None) -> CreateWallet:
    return CreateWallet(event_id="ev-c", actor="t", wallet_id="w1", tenant_id="t1", environment_id="env1",
                        customer_id="c1", currency="USD", alert_settings=alerts, auto_topup=topup,
                        initial_credits=D(initial), initial_transaction_id="tx-i")


def test_a_wallet_created_with_enough_initial_credits_emits_no_alert() -> None:
    account, found = watched(*decide(EMPTY_ACCOUNT, create_command("100", alerts=levels("below", "10")), T0))
    assert found == []
    assert balance_at(account, T0).credit_balance == D(100)


def test_a_wallet_created_with_too_few_initial_credits_drops_at_creation() -> None:
    _, found = watched(*decide(EMPTY_ACCOUNT, create_command("10", alerts=levels("below", "10", "20")), T0))
    assert [(t.name, t.old, t.new, t.position, t.value, t.threshold) for t in found] == [
        ("wallet.ongoing_balance.dropped", "ok", "in_alarm", "1-0", "10", "10"),
        ("wallet.credit_balance.dropped", "ok", "in_alarm", "1-0", "10", "10"),
    ]


# --- auto top-up -------------------------------------------------------------------------------------------------


def funded(created_event: WalletCreated, credits: str = "100") -> Account:
    account, _ = watched(created_event, granted("a", credits))
    return account


def auto_grant(trigger: str, now: datetime, amount: str = "50", invoiced: bool = False) -> CreditsGranted:
    return CreditsGranted(
        id=f"clock:autotopup:w1:{trigger}", at=now, wallet_id="w1", transaction_id=f"wtx_auto_w1_{trigger}",
        credits=D(amount), reason="PURCHASED_CREDIT_INVOICED" if invoiced else "PURCHASED_CREDIT_DIRECT",
        idempotency_key=auto_topup_key("w1", trigger), description="auto top-up", pending=invoiced,
    )


@pytest.mark.parametrize(("initial", "armed"), [("100", None), ("10.01", None), ("10", "1-0"), ("0", "1-0")])
def test_a_new_wallet_arms_at_creation_only_when_its_initial_credits_are_at_or_below_the_threshold(
    initial: str, armed: str | None
) -> None:
    topup = AutoTopup(enabled=True, threshold=D(10), amount=D(50))
    account, _ = watched(*decide(EMPTY_ACCOUNT, create_command(initial, topup=topup), T0))
    assert wallet_of(account).auto_topup_trigger == armed
    assert [e.id for e in due_events(account, after(minutes=1), GRACE)] == (
        [] if armed is None else ["clock:autotopup:w1:1-0"])


def test_a_new_empty_wallet_arms_at_creation_and_its_first_grant_disarms_it() -> None:
    account, _ = watched(topping())
    assert (wallet_of(account).auto_topup_trigger, wallet_of(account).auto_topup_armed_at) == ("1-0", T0)
    account, _ = when(account, granted("a", "100", at=after(seconds=1)))
    assert (wallet_of(account).auto_topup_trigger, wallet_of(account).auto_topup_armed_at) == (None, None)
    assert due_events(account, after(hours=1), GRACE) == []


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("left", "armed"), [("10.01", False), ("10", True), ("9.99", True), ("0", True)])
def test_auto_top_up_arms_when_the_real_time_credit_balance_is_at_or_below_the_threshold(
    left: str, armed: bool, rate: str
) -> None:
    account, _ = when(funded(topping(rate=rate)), debited("d", str(100 - D(left)), at=after(minutes=5)))
    wallet = wallet_of(account)
    assert (wallet.auto_topup_trigger, wallet.auto_topup_armed_at) == (("3-0", after(minutes=5)) if armed
                                                                       else (None, None))
    assert next_due(account, GRACE) == (after(minutes=5) if armed else None)


def test_auto_top_up_reads_the_real_time_balance_so_pending_usage_arms_it() -> None:
    # Rate 2: 50 credits = 100 USD; 180 units x 0.5 = 90 USD pending -> 5 credits real-time, 50 credits held.
    account, _ = when(funded(topping(rate="2"), "50"), units("u1", "180", after(minutes=5)))
    assert balance_at(account, after(minutes=5)).credit_balance == D(50)
    assert wallet_of(account).auto_topup_trigger == "3-0"


def test_a_disabled_auto_top_up_never_arms() -> None:
    account, _ = watched(topping(enabled=False), granted("a", "100"), debited("d", "100", at=after(minutes=5)))
    assert wallet_of(account).auto_topup_trigger is None
    assert due_events(account, after(hours=1), GRACE) == []


def test_an_armed_top_up_is_in_flight_so_further_drops_do_not_re_arm_it() -> None:
    account, _ = watched(debited("d1", "95", at=after(minutes=1)), debited("d2", "3", at=after(minutes=2)),
                         units("u1", "2", after(minutes=3)), account=funded(topping()))
    wallet = wallet_of(account)
    assert (wallet.auto_topup_trigger, wallet.auto_topup_armed_at) == ("3-0", after(minutes=1))
    assert [e.id for e in due_events(account, after(minutes=4), GRACE)] == ["clock:autotopup:w1:3-0"]


def test_the_clock_appends_one_top_up_with_ids_derived_from_the_trigger() -> None:
    account, _ = when(funded(topping(amount="50")), debited("d", "95", at=after(minutes=1)))
    first = due_events(account, after(minutes=1), GRACE)
    later = due_events(account, after(minutes=9), GRACE)
    assert first == [auto_grant("3-0", after(minutes=1))]
    assert later == [auto_grant("3-0", after(minutes=9))]  # same id, transaction id and key: deduplicated
    assert auto_grant("3-0", T0).idempotency_key == auto_topup_key("w1", "3-0") == "auto_topup:w1:3-0"


def test_the_top_up_landing_clears_the_trigger_and_starts_the_cooldown() -> None:
    account, _ = when(funded(topping(amount="50")), debited("d", "95", at=after(minutes=1)))
    [grant] = due_events(account, after(minutes=2), GRACE)
    account, found = when(account, grant)
    wallet = wallet_of(account)
    assert (wallet.auto_topup_trigger, wallet.auto_topup_armed_at, wallet.last_auto_topup_at) == (
        None, None, after(minutes=2))
    assert balance_at(account, after(minutes=2)).credit_balance == D(55)
    assert found == []  # no alert settings: nothing to transition
    assert due_events(account, after(minutes=3), GRACE) == []
    assert next_due(account, GRACE) is None


def test_the_top_up_never_re_arms_on_its_own_grant_even_when_it_leaves_the_balance_low() -> None:
    account, _ = when(funded(topping(amount="3")), debited("d", "98", at=after(minutes=1)))
    [grant] = due_events(account, after(minutes=2), GRACE)
    account, _ = when(account, grant)
    assert balance_at(account, after(minutes=2)).credit_balance == D(5)  # still at or below 10
    assert wallet_of(account).auto_topup_trigger is None
    assert due_events(account, after(minutes=3), GRACE) == []
    account, _ = when(account, debited("d2", "1", at=after(minutes=3)))  # the next event (no cooldown) re-arms
    assert wallet_of(account).auto_topup_trigger == "5-0"


def test_a_grant_with_another_key_does_not_clear_the_trigger() -> None:
    account, _ = when(funded(topping()), debited("d", "95", at=after(minutes=1)))
    manual = msgspec.structs.replace(granted("m", "2", at=after(minutes=2)), idempotency_key="order-1")
    stale = auto_grant("2-0", after(minutes=3), amount="1")
    account, _ = watched(manual, stale, account=account)
    wallet = wallet_of(account)
    assert (wallet.auto_topup_trigger, wallet.last_auto_topup_at) == ("3-0", None)
    assert balance_at(account, after(minutes=3)).credit_balance == D(8)


@pytest.mark.parametrize(("top_up", "still_armed"), [("5", True), ("5.01", False), ("90", False)])
def test_a_balance_that_recovers_before_the_top_up_lands_disarms_it(top_up: str, still_armed: bool) -> None:
    account, _ = when(funded(topping()), debited("d", "95", at=after(minutes=1)))
    account, _ = when(account, granted("m", top_up, at=after(minutes=2)))
    wallet = wallet_of(account)
    assert wallet.auto_topup_trigger == ("3-0" if still_armed else None)
    assert wallet.last_auto_topup_at is None
    assert [e.id for e in due_events(account, after(minutes=3), GRACE)] == (
        ["clock:autotopup:w1:3-0"] if still_armed else [])


def test_the_cooldown_holds_from_the_last_top_up_to_the_next_trigger() -> None:
    account, _ = when(funded(topping(amount="50", cooldown=60)), debited("d", "95", at=after(minutes=1)))
    [grant] = due_events(account, after(minutes=2), GRACE)
    account, _ = when(account, grant)  # lands at 00:02:00 with 55 credits
    account, _ = when(account, debited("d2", "50", at=after(minutes=3) - MICRO))  # 5 left, 59.999999 s later
    assert wallet_of(account).auto_topup_trigger is None
    assert due_events(account, after(hours=1), GRACE) == []  # time alone arms nothing
    account, _ = when(account, debited("d3", "1", at=after(minutes=3)))  # exactly 60 s after: armed again
    assert (wallet_of(account).auto_topup_trigger, wallet_of(account).auto_topup_armed_at) == ("6-0", after(minutes=3))


def test_a_frozen_wallet_does_not_arm_and_arms_when_unfrozen() -> None:
    account, _ = watched(frozen(at=after(minutes=1)), units("u1", "190", after(minutes=2)), account=funded(topping()))
    assert wallet_of(account).auto_topup_trigger is None
    account, _ = when(account, unfrozen(at=after(minutes=3)))
    assert wallet_of(account).auto_topup_trigger == "5-0"


def test_an_armed_top_up_waits_while_its_wallet_is_frozen_and_never_for_a_closed_one() -> None:
    account, _ = when(funded(topping()), debited("d", "95", at=after(minutes=1)))
    cold, _ = when(account, frozen(at=after(minutes=2)))
    assert wallet_of(cold).auto_topup_trigger == "3-0"
    assert due_events(cold, after(minutes=3), GRACE) == []
    assert next_due(cold, GRACE) is None
    thawed, _ = when(cold, unfrozen(at=after(minutes=4)))
    assert [e.id for e in due_events(thawed, after(minutes=5), GRACE)] == ["clock:autotopup:w1:3-0"]
    closed, _ = when(account, terminated(at=after(minutes=2)))
    assert due_events(closed, after(minutes=3), GRACE) == []


def test_an_invoiced_top_up_is_pending_until_paid() -> None:
    account, _ = when(funded(topping(amount="50", invoicing=True)), debited("d", "95", at=after(minutes=1)))
    [grant] = due_events(account, after(minutes=2), GRACE)
    assert grant == auto_grant("3-0", after(minutes=2), invoiced=True)
    account, _ = when(account, grant)
    wallet = wallet_of(account)
    assert wallet.auto_topup_trigger is None and wallet.last_auto_topup_at == after(minutes=2)
    assert balance_at(account, after(minutes=2)).credit_balance == D(5)  # the pending lot is not available
    assert [(lot.id, lot.pending) for lot in wallet.lots][-1] == ("wtx_auto_w1_3-0", True)
    assert ledger_of(account)[-1].pending
    account, _ = when(account, CreditsPaid(id="ev-paid", at=after(minutes=3), wallet_id="w1",
                                           transaction_id="wtx_auto_w1_3-0"))
    assert balance_at(account, after(minutes=3)).credit_balance == D(55)
    assert not ledger_of(account)[-1].pending


def test_an_unpaid_invoiced_top_up_is_still_in_flight_and_its_payment_ends_the_flight() -> None:
    account, _ = when(funded(topping(amount="3", invoicing=True)), debited("d", "95", at=after(minutes=1)))
    [grant] = due_events(account, after(minutes=2), GRACE)
    account, _ = watched(grant, debited("d2", "1", at=after(minutes=3)), units("u1", "8", after(minutes=3)),
                         account=account)
    assert wallet_of(account).auto_topup_trigger is None  # 4 credits, 0 real-time: low, but one is in flight
    assert due_events(account, after(minutes=4), GRACE) == []
    account, _ = when(account, CreditsPaid(id="ev-paid", at=after(minutes=5), wallet_id="w1",
                                           transaction_id="wtx_auto_w1_3-0"))
    assert balance_at(account, after(minutes=5)).real_time_credit_balance == D(3)  # 7 held - 4 USD of usage
    assert wallet_of(account).auto_topup_trigger == "7-0"  # paid: still low, so the payment itself arms the next


def test_disabling_auto_top_up_disarms_a_pending_trigger() -> None:
    account, _ = when(funded(topping()), debited("d", "95", at=after(minutes=1)))
    account, _ = when(account, WalletUpdated(id="ev-off", at=after(minutes=2), wallet_id="w1",
                                             auto_topup=AutoTopup(enabled=False)))
    assert wallet_of(account).auto_topup_trigger is None
    assert due_events(account, after(minutes=3), GRACE) == []
