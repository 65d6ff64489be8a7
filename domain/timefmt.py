"""RFC 3339 timestamps in and out: parsing with a zone within the documented bounds, printing in UTC with a Z."""

from datetime import UTC, datetime
from typing import Final

import msgspec

from domain.bounds import EARLIEST, LATEST

_json: Final = msgspec.json.Encoder().encode


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; a value without a zone, or outside [EARLIEST, LATEST), is refused."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 timestamp with a zone offset: {text!r}") from exc
    if value.tzinfo is None:
        raise ValueError(f"timestamp has no zone offset: {text!r}")
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 and 9999-12-31T23:59:59-01:00 have no UTC form
        raise ValueError(f"timestamp out of range: {text!r}") from exc
    return within_bounds(utc)


def parse_yyyymmdd(number: int) -> datetime:
    """A date written as the number YYYYMMDD, as midnight UTC, within the bounds."""
    try:
        value = datetime.strptime(str(number), "%Y%m%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"not a YYYYMMDD date: {number!r}") from exc
    return within_bounds(value)


def within_bounds(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{format_rfc3339(value)} is not in [{format_rfc3339(EARLIEST)}, {format_rfc3339(LATEST)})")
    return value


def format_rfc3339(value: datetime) -> str:
    """UTC, microseconds kept only when present, suffixed with Z: `value.astimezone(UTC).isoformat()` with its
    "+00:00" written as Z and ".000000" left out. msgspec's JSON encoder writes exactly that text for a UTC datetime,
    in C, at about a seventh of isoformat's cost (the projector writes several instants into every notice)."""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return _json(utc)[1:-1].decode()
