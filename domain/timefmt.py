"""RFC 3339 timestamps in and out: parsing with a zone, printing in UTC with a Z."""

from datetime import UTC, datetime


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; a value without a zone is refused."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}") from exc
    if value.tzinfo is None:
        raise ValueError(f"timestamp has no zone offset: {text!r}")
    return value.astimezone(UTC)


def format_rfc3339(value: datetime) -> str:
    """UTC, microseconds kept only when present, suffixed with Z."""
    utc = value.astimezone(UTC)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")
