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


@given(naive, offsets, offsets)
def test_a_remembered_text_is_the_one_its_instant_has_in_any_zone(value: datetime, first: timezone,
                                                                  second: timezone) -> None:
    """format_rfc3339 remembers its answers: one given for an equal instant in another zone is still this one's."""
    try:
        primed, asked = value.replace(tzinfo=first), value.replace(tzinfo=first).astimezone(second)
    except OverflowError:
        return  # no such instant in the second zone
    format_rfc3339(primed)
    assert format_rfc3339(asked) == format_rfc3339.__wrapped__(asked) == format_rfc3339.__wrapped__(primed)
