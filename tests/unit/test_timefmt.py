"""Timestamps a caller sends: RFC 3339 with a zone, accepted exactly within [EARLIEST, LATEST), never an overflow."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.bounds import EARLIEST, LATEST
from domain.timefmt import format_rfc3339, parse_rfc3339, parse_yyyymmdd

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
naive = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))


@given(naive, offsets)
def test_a_timestamp_is_accepted_exactly_when_its_instant_lies_within_the_bounds(value: datetime,
                                                                                 zone: timezone) -> None:
    text = value.replace(tzinfo=zone).isoformat()
    instant = value.replace(tzinfo=zone).astimezone(UTC)
    if EARLIEST <= instant < LATEST:
        assert parse_rfc3339(text) == instant
        assert parse_rfc3339(format_rfc3339(instant)) == instant
    else:
        with pytest.raises(ValueError):
            parse_rfc3339(text)


@pytest.mark.parametrize("text", [
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    "1969-12-31T23:59:59.999999Z", "2200-01-01T00:00:00Z", "2200-01-01T00:30:00+00:30", "2024-01-01T00:00:00",
    "2024-01-01T00:00:00+24:00", "", "now",
])
def test_out_of_range_and_malformed_timestamps_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_the_bounds_themselves() -> None:
    assert parse_rfc3339("1970-01-01T00:00:00Z") == EARLIEST
    assert parse_rfc3339("1970-01-01T01:00:00+01:00") == EARLIEST
    assert parse_rfc3339("2199-12-31T23:59:59.999999Z") == LATEST - timedelta(microseconds=1)


@pytest.mark.parametrize(("number", "expected"), [(19700101, EARLIEST), (21991231, datetime(2199, 12, 31, tzinfo=UTC))])
def test_yyyymmdd_within_the_bounds(number: int, expected: datetime) -> None:
    assert parse_yyyymmdd(number) == expected


@pytest.mark.parametrize("number", [10101, 19691231, 22000101, 99991231, 20240230, -20240101, 2**64 + 1, 0])
def test_yyyymmdd_outside_the_bounds_or_malformed(number: int) -> None:
    with pytest.raises(ValueError):
        parse_yyyymmdd(number)


def isoformat_text(value: datetime) -> str:
    """The text format_rfc3339 must write, as isoformat gives it: UTC, ".ffffff" only when there are
    microseconds, "+00:00" written as Z."""
    utc = value.astimezone(UTC)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")


@given(naive, offsets)
def test_an_instant_is_written_as_isoformat_writes_it_in_utc_with_a_z(value: datetime, zone: timezone) -> None:
    try:
        aware = value.replace(tzinfo=zone)
        expected = isoformat_text(aware)
    except OverflowError:
        return  # no UTC form
    assert format_rfc3339(aware) == expected
    assert format_rfc3339(aware.astimezone(UTC)) == expected


@pytest.mark.parametrize(("value", "text"), [
    (datetime(1970, 1, 1, tzinfo=UTC), "1970-01-01T00:00:00Z"),
    (datetime(2026, 3, 1, 12, 0, 0, 10, tzinfo=UTC), "2026-03-01T12:00:00.000010Z"),
    (datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "2199-12-31T23:59:59.999999Z"),
    (datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))), "2026-02-28T23:30:00Z"),
    (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
])
def test_written_instants(value: datetime, text: str) -> None:
    assert format_rfc3339(value) == text
