"""Alert state against inclusive thresholds, on the real-time credit balance; alert settings validation."""

from decimal import Decimal

import pytest

from domain.alerts import alert_state, check_settings
from domain.settings import AlertCondition, AlertSettings, AlertState, AlertThreshold
from tests.unit.given import after, balance_at, created, debited, given, granted

D = Decimal


def levels(condition: AlertCondition, critical: str | None, warning: str | None = None, info: str | None = None,
           *, enabled: bool = True) -> AlertSettings:
    def level(value: str | None) -> AlertThreshold | None:
        return None if value is None else AlertThreshold(threshold=D(value), condition=condition)

    return AlertSettings(alert_enabled=enabled, critical=level(critical), warning=level(warning), info=level(info))


BELOW = levels("below", "10", "20", "30")
ABOVE = levels("above", "100", "80", "60")


@pytest.mark.parametrize(
    ("value", "state"),
    [
        ("-5", "in_alarm"), ("0", "in_alarm"), ("9.99", "in_alarm"), ("10", "in_alarm"),
        ("10.000000000001", "warning"), ("19.99", "warning"), ("20", "warning"),
        ("20.01", "info"), ("29.99", "info"), ("30", "info"),
        ("30.01", "ok"), ("1000", "ok"),
    ],
)
def test_below_thresholds_are_inclusive_and_the_worst_level_wins(value: str, state: AlertState) -> None:
    assert alert_state(BELOW, D(value)) == state


@pytest.mark.parametrize(
    ("value", "state"),
    [
        ("1000", "in_alarm"), ("100.01", "in_alarm"), ("100", "in_alarm"),
        ("99.99", "warning"), ("80.01", "warning"), ("80", "warning"),
        ("79.99", "info"), ("60", "info"),
        ("59.999999999999", "ok"), ("0", "ok"), ("-1", "ok"),
    ],
)
def test_above_thresholds_are_inclusive_and_the_worst_level_wins(value: str, state: AlertState) -> None:
    assert alert_state(ABOVE, D(value)) == state


@pytest.mark.parametrize("value", ["-100", "0", "10", "20", "30", "1000"])
def test_disabled_or_absent_alerts_are_always_ok(value: str) -> None:
    assert alert_state(levels("below", "10", "20", "30", enabled=False), D(value)) == "ok"
    assert alert_state(None, D(value)) == "ok"


@pytest.mark.parametrize(("value", "state"), [("4.99", "in_alarm"), ("5", "in_alarm"), ("5.01", "ok")])
def test_a_lone_critical_threshold_alarms_or_is_ok(value: str, state: AlertState) -> None:
    assert alert_state(levels("below", "5"), D(value)) == state


@pytest.mark.parametrize(("value", "state"), [("14.99", "warning"), ("15", "warning"), ("15.01", "ok")])
def test_warning_without_info_goes_straight_back_to_ok(value: str, state: AlertState) -> None:
    assert alert_state(levels("below", "5", "15"), D(value)) == state


# The wallet converts at 4: 10 credits are a balance of 40. Alerts must read credits, not money.
@pytest.mark.parametrize(
    ("credits", "state"),
    [
        ("9.75", "in_alarm"), ("10", "in_alarm"), ("10.25", "warning"),
        ("19.75", "warning"), ("20", "warning"), ("20.25", "info"),
        ("29.75", "info"), ("30", "info"), ("30.25", "ok"),
    ],
)
def test_the_view_evaluates_alerts_on_the_real_time_credit_balance(credits: str, state: AlertState) -> None:
    account = given(created(rate="4", alerts=BELOW), granted("a", "50"), debited("d", str(50 - D(credits))))
    view = balance_at(account, after(hours=1))
    assert view.real_time_credit_balance == D(credits)
    assert view.balance == D(credits) * 4
    assert view.alert_state == state


def test_the_view_alerts_on_credits_even_when_the_rate_is_below_one() -> None:
    account = given(created(rate="0.1", alerts=levels("below", "10", "20", "30")), granted("a", "25"))
    view = balance_at(account, after(hours=1))
    assert (view.balance, view.real_time_credit_balance, view.alert_state) == (D("2.5"), D(25), "info")


def test_the_view_alerts_when_an_unexpired_lot_becomes_expired() -> None:
    account = given(
        created(rate="2", alerts=levels("below", "10")),
        granted("a", "50", expires_at=after(days=1)),
        granted("b", "8"),
    )
    assert balance_at(account, after(days=1, micros=-1)).alert_state == "ok"
    assert balance_at(account, after(days=1)).alert_state == "in_alarm"


def test_sound_settings_have_no_problems() -> None:
    assert check_settings(BELOW) == []
    assert check_settings(ABOVE) == []
    assert check_settings(levels("below", "0")) == []
    assert check_settings(levels("above", "10", "5")) == []
    assert check_settings(AlertSettings()) == []


def test_a_warning_needs_a_critical_threshold() -> None:
    assert check_settings(levels("below", None, "20")) == ["warning threshold needs a critical threshold"]


def test_info_alone_needs_a_critical_or_warning_threshold() -> None:
    assert check_settings(levels("below", None, None, "30")) == [
        "info threshold needs a critical or warning threshold"
    ]


def test_enabled_alerts_need_a_threshold() -> None:
    assert check_settings(AlertSettings(alert_enabled=True)) == ["alerts are enabled but no threshold is set"]


@pytest.mark.parametrize(
    ("settings", "relation"),
    [
        (levels("below", "20", "10"), "below warning below info"),
        (levels("below", "10", "30", "20"), "below warning below info"),
        (levels("below", "10", "10", "30"), "below warning below info"),
        (levels("below", "10", None, "5"), "below warning below info"),
        (levels("above", "60", "80", "100"), "above warning above info"),
        (levels("above", "100", "60", "80"), "above warning above info"),
        (levels("above", "100", "100"), "above warning above info"),
    ],
)
def test_thresholds_must_be_strictly_ordered(settings: AlertSettings, relation: str) -> None:
    assert check_settings(settings) == [f"thresholds must be strictly ordered: critical {relation}"]


def test_disordered_thresholds_are_reported_even_when_alerts_are_disabled() -> None:
    assert check_settings(levels("below", "20", "10", enabled=False)) == [
        "thresholds must be strictly ordered: critical below warning below info"
    ]


def test_thresholds_must_share_one_condition() -> None:
    mixed = AlertSettings(
        alert_enabled=True,
        critical=AlertThreshold(threshold=D(10), condition="below"),
        warning=AlertThreshold(threshold=D(20), condition="above"),
    )
    assert check_settings(mixed) == ["all thresholds must share one condition"]


def test_several_problems_are_all_reported() -> None:
    settings = AlertSettings(
        alert_enabled=True,
        warning=AlertThreshold(threshold=D(20), condition="below"),
        info=AlertThreshold(threshold=D(30), condition="above"),
    )
    assert check_settings(settings) == [
        "warning threshold needs a critical threshold",
        "all thresholds must share one condition",
    ]
