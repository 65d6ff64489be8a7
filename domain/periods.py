"""Billing periods: a customer's anchor and period length, and which period an instant falls in."""

import calendar
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

PeriodUnit = Literal["minute", "hour", "day", "month"]


class BillingCycle(msgspec.Struct, frozen=True, kw_only=True):
    anchor: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    unit: PeriodUnit = "month"
    count: int = 1


DEFAULT_CYCLE = BillingCycle()


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_STEP_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def days_in_month(year: int, month: int) -> int:
    """`calendar.monthrange(year, month)[1]`, without the weekday it works out first."""
    return 29 if month == 2 and calendar.isleap(year) else _MONTH_DAYS[month - 1]


def add_months(anchor: datetime, months: int) -> datetime:
    """The anchor moved by whole months, its day clamped to the month's last (Jan 31 + 1 month = Feb 28/29)."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor.day, days_in_month(year, month + 1))
    return anchor.replace(year=year, month=month + 1, day=day)


def boundary(cycle: BillingCycle, index: int) -> datetime:
    """Start of period `index` (period 0 starts at the anchor; negative indexes lie before it)."""
    if cycle.unit == "month":
        return add_months(cycle.anchor, index * cycle.count)
    return cycle.anchor + _STEPS[cycle.unit] * cycle.count * index


def period_index(cycle: BillingCycle, at: datetime) -> int:
    """The index of the period holding `at`: boundary(i) <= at < boundary(i + 1)."""
    return _located(cycle, at)[0]


def period_of(cycle: BillingCycle, at: datetime) -> tuple[datetime, datetime]:
    _, start, end = _located(cycle, at)
    return start, end


def _located(cycle: BillingCycle, at: datetime) -> tuple[int, datetime, datetime]:
    """(i, boundary(i), boundary(i + 1)) for the period i holding `at`, each boundary worked out once."""
    if cycle.unit == "month":
        months = (at.year - cycle.anchor.year) * 12 + (at.month - cycle.anchor.month)
        index = months // cycle.count
    else:
        step = _STEP_SECONDS[cycle.unit] * cycle.count
        index = int((at - cycle.anchor).total_seconds() // step)
    start = boundary(cycle, index)
    while start > at:
        index -= 1
        start = boundary(cycle, index)
    end = boundary(cycle, index + 1)
    while end <= at:
        index += 1
        start, end = end, boundary(cycle, index + 1)
    return index, start, end
