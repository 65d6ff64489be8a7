"""Billing periods: month ends, leap years, anchors late in the month, sub-day units, negative indexes."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from domain.periods import DEFAULT_CYCLE, BillingCycle, PeriodUnit, add_months, boundary, period_index, period_of

MICRO = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "months", "moved"),
    [
        (utc(2028, 1, 31), 1, utc(2028, 2, 29)),  # leap year
        (utc(2027, 1, 31), 1, utc(2027, 2, 28)),
        (utc(2027, 1, 31), 13, utc(2028, 2, 29)),
        (utc(2028, 3, 31), -1, utc(2028, 2, 29)),
        (utc(2028, 2, 29), 12, utc(2029, 2, 28)),
        (utc(2028, 2, 29), 48, utc(2032, 2, 29)),
        (utc(2025, 1, 30), 1, utc(2025, 2, 28)),
        (utc(2025, 5, 31), 1, utc(2025, 6, 30)),
        (utc(2025, 12, 15, 9, 30), 1, utc(2026, 1, 15, 9, 30)),
        (utc(2025, 1, 15), -1, utc(2024, 12, 15)),
        (utc(2025, 1, 15), -13, utc(2023, 12, 15)),
        (utc(2025, 3, 31), 0, utc(2025, 3, 31)),
    ],
)
def test_add_months_clamps_the_day_to_the_months_last(anchor: datetime, months: int, moved: datetime) -> None:
    assert add_months(anchor, months) == moved


@pytest.mark.parametrize(
    ("anchor", "starts"),
    [
        (utc(2028, 1, 31), [utc(2028, 1, 31), utc(2028, 2, 29), utc(2028, 3, 31), utc(2028, 4, 30), utc(2028, 5, 31)]),
        (utc(2027, 1, 31), [utc(2027, 1, 31), utc(2027, 2, 28), utc(2027, 3, 31), utc(2027, 4, 30), utc(2027, 5, 31)]),
        (utc(2027, 1, 30), [utc(2027, 1, 30), utc(2027, 2, 28), utc(2027, 3, 30), utc(2027, 4, 30), utc(2027, 5, 30)]),
        (utc(2027, 1, 29), [utc(2027, 1, 29), utc(2027, 2, 28), utc(2027, 3, 29), utc(2027, 4, 29), utc(2027, 5, 29)]),
        (utc(2028, 1, 29), [utc(2028, 1, 29), utc(2028, 2, 29), utc(2028, 3, 29), utc(2028, 4, 29), utc(2028, 5, 29)]),
    ],
)
def test_monthly_boundaries_come_from_the_anchor_not_from_the_previous_clamped_boundary(
    anchor: datetime, starts: list[datetime]
) -> None:
    cycle = BillingCycle(anchor=anchor)
    assert [boundary(cycle, i) for i in range(5)] == starts


def test_an_anchor_on_the_31st_gives_periods_jan31_feb29_and_feb29_mar31_in_a_leap_year() -> None:
    cycle = BillingCycle(anchor=utc(2028, 1, 31))
    assert period_of(cycle, utc(2028, 2, 10)) == (utc(2028, 1, 31), utc(2028, 2, 29))
    assert period_of(cycle, utc(2028, 2, 29)) == (utc(2028, 2, 29), utc(2028, 3, 31))
    assert period_of(cycle, utc(2028, 2, 29) - MICRO) == (utc(2028, 1, 31), utc(2028, 2, 29))
    assert period_of(cycle, utc(2028, 3, 30, 23, 59, 59)) == (utc(2028, 2, 29), utc(2028, 3, 31))
    assert period_of(cycle, utc(2028, 3, 31)) == (utc(2028, 3, 31), utc(2028, 4, 30))
    assert period_index(cycle, utc(2028, 4, 30)) == 3


def test_the_default_cycle_is_calendar_months() -> None:
    assert period_of(DEFAULT_CYCLE, utc(2025, 1, 17, 8)) == (utc(2025, 1, 1), utc(2025, 2, 1))
    assert period_of(DEFAULT_CYCLE, utc(2028, 2, 29, 23, 59, 59)) == (utc(2028, 2, 1), utc(2028, 3, 1))
    assert period_of(DEFAULT_CYCLE, utc(2025, 12, 31, 23, 59, 59)) == (utc(2025, 12, 1), utc(2026, 1, 1))


def test_an_instant_exactly_on_a_boundary_opens_the_next_period() -> None:
    cycle = BillingCycle(anchor=utc(2025, 1, 15, 12))
    assert period_of(cycle, utc(2025, 2, 15, 12)) == (utc(2025, 2, 15, 12), utc(2025, 3, 15, 12))
    assert period_of(cycle, utc(2025, 2, 15, 12) - MICRO) == (utc(2025, 1, 15, 12), utc(2025, 2, 15, 12))
    assert period_index(cycle, utc(2025, 1, 15, 12)) == 0


def test_an_instant_with_another_utc_offset_falls_in_the_period_of_its_utc_instant() -> None:
    paris = timezone(timedelta(hours=1))
    assert period_of(DEFAULT_CYCLE, datetime(2025, 2, 1, 0, 30, tzinfo=paris)) == (utc(2025, 1, 1), utc(2025, 2, 1))
    new_york = timezone(timedelta(hours=-5))
    assert period_of(DEFAULT_CYCLE, datetime(2025, 1, 31, 19, tzinfo=new_york)) == (utc(2025, 2, 1), utc(2025, 3, 1))


def test_quarterly_periods_from_an_anchor_on_the_31st() -> None:
    cycle = BillingCycle(anchor=utc(2027, 8, 31), count=3)
    assert [boundary(cycle, i) for i in (-1, 0, 1, 2)] == [utc(2027, 5, 31), utc(2027, 8, 31), utc(2027, 11, 30),
                                                           utc(2028, 2, 29)]
    assert period_of(cycle, utc(2027, 11, 30)) == (utc(2027, 11, 30), utc(2028, 2, 29))
    assert period_index(cycle, utc(2027, 11, 29, 23)) == 0


@pytest.mark.parametrize(
    ("unit", "count", "at", "start", "end"),
    [
        ("minute", 15, utc(2025, 1, 1, 0, 29, 59), utc(2025, 1, 1, 0, 22, 30), utc(2025, 1, 1, 0, 37, 30)),
        ("minute", 15, utc(2025, 1, 1, 0, 37, 30), utc(2025, 1, 1, 0, 37, 30), utc(2025, 1, 1, 0, 52, 30)),
        ("hour", 6, utc(2025, 1, 2, 4, 7, 30), utc(2025, 1, 2, 0, 7, 30), utc(2025, 1, 2, 6, 7, 30)),
        ("hour", 6, utc(2025, 1, 2, 6, 7, 30), utc(2025, 1, 2, 6, 7, 30), utc(2025, 1, 2, 12, 7, 30)),
        ("day", 7, utc(2025, 1, 15, 0, 7, 29), utc(2025, 1, 8, 0, 7, 30), utc(2025, 1, 15, 0, 7, 30)),
        ("day", 7, utc(2025, 1, 15, 0, 7, 30), utc(2025, 1, 15, 0, 7, 30), utc(2025, 1, 22, 0, 7, 30)),
        ("day", 7, utc(2028, 2, 29, 12), utc(2028, 2, 23, 0, 7, 30), utc(2028, 3, 1, 0, 7, 30)),
    ],
)
def test_sub_month_units_step_by_count_from_the_anchor(
    unit: PeriodUnit, count: int, at: datetime, start: datetime, end: datetime
) -> None:
    cycle = BillingCycle(anchor=utc(2025, 1, 1, 0, 7, 30), unit=unit, count=count)
    assert period_of(cycle, at) == (start, end)


@pytest.mark.parametrize(
    ("cycle", "at", "index", "start"),
    [
        (BillingCycle(anchor=utc(2025, 3, 31)), utc(2025, 2, 28, 23), -1, utc(2025, 2, 28)),
        (BillingCycle(anchor=utc(2025, 3, 31)), utc(2025, 2, 27), -2, utc(2025, 1, 31)),
        (BillingCycle(anchor=utc(2025, 3, 31)), utc(2024, 3, 31), -12, utc(2024, 3, 31)),
        (BillingCycle(anchor=utc(2025, 1, 1, 0, 0, 30), unit="minute", count=2), utc(2025, 1, 1), -1,
         utc(2024, 12, 31, 23, 58, 30)),
        (BillingCycle(anchor=utc(2025, 1, 1, 6), unit="hour", count=4), utc(2025, 1, 1, 5, 59, 59), -1,
         utc(2025, 1, 1, 2)),
        (BillingCycle(anchor=utc(2025, 1, 1, 6), unit="day", count=3), utc(2024, 12, 29, 6), -1,
         utc(2024, 12, 29, 6)),
        (BillingCycle(anchor=utc(2025, 1, 1, 6), unit="day", count=3), utc(2024, 12, 29, 5), -2,
         utc(2024, 12, 26, 6)),
    ],
)
def test_instants_before_the_anchor_have_negative_indexes(
    cycle: BillingCycle, at: datetime, index: int, start: datetime
) -> None:
    assert period_index(cycle, at) == index
    assert boundary(cycle, index) == start
    assert period_of(cycle, at)[0] == start


UNITS: list[PeriodUnit] = ["minute", "hour", "day", "month"]
INSTANTS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC))


@settings(max_examples=400, deadline=None)
@for_all(anchor=INSTANTS, at=INSTANTS, unit=st.sampled_from(UNITS), count=st.integers(1, 13))
def test_every_instant_lies_in_exactly_the_period_its_index_names(
    anchor: datetime, at: datetime, unit: PeriodUnit, count: int
) -> None:
    cycle = BillingCycle(anchor=anchor, unit=unit, count=count)
    index = period_index(cycle, at)
    assert boundary(cycle, index) <= at < boundary(cycle, index + 1)
    assert period_of(cycle, at) == (boundary(cycle, index), boundary(cycle, index + 1))
    assert (index >= 0) == (at >= anchor)
