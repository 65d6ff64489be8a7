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


def add_months(anchor: datetime, months: int) -> datetime:
    """The anchor moved by whole months, its day clamped to the month's last (Jan 31 + 1 month = Feb 28/29)."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def boundary(cycle: BillingCycle, index: int) -> datetime:
    """Start of period `index` (period 0 starts at the anchor; negative indexes lie before it)."""
    if cycle.unit == "month":
        return add_months(cycle.anchor, index * cycle.count)
    step = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}[cycle.unit]
    return cycle.anchor + step * cycle.count * index


def period_index(cycle: BillingCycle, at: datetime) -> int:
    """The index of the period holding `at`: boundary(i) <= at < boundary(i + 1)."""
    if cycle.unit == "month":
        months = (at.year - cycle.anchor.year) * 12 + (at.month - cycle.anchor.month)
        index = months // cycle.count
    else:
        step = {"minute": 60, "hour": 3600, "day": 86400}[cycle.unit] * cycle.count
        index = int((at - cycle.anchor).total_seconds() // step)
    while boundary(cycle, index) > at:
        index -= 1
    while boundary(cycle, index + 1) <= at:
        index += 1
    return index


def period_of(cycle: BillingCycle, at: datetime) -> tuple[datetime, datetime]:
    index = period_index(cycle, at)
    return boundary(cycle, index), boundary(cycle, index + 1)
