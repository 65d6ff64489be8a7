"""Bounded wire types: each id, key, text, map and list a caller sends carries its documented limit.

The limits come from `domain.bounds`; msgspec enforces them while decoding (a 400 naming the field) and
states them in the OpenAPI document (maxLength, pattern, maxProperties, minimum, maximum).
"""

import re
from typing import Annotated, Any, get_args

import msgspec
from fastapi import Path, Query

from domain import bounds
from domain.errors import ValidationFailed

# A whole text without control characters. Python's `$` (msgspec checks with `re`) also matches before a final
# newline, which `(?!\n)` refuses; ECMA 262 (what OpenAPI readers use) means the same by it. Path parameters are
# checked by pydantic's Rust engine, which has no look-ahead and whose `$` is the end of the text.
_PLAIN = f"^[^{bounds.CONTROL_CHARACTERS}]*$(?!\\n)"
_PLAIN_PATH = f"^[^{bounds.CONTROL_CHARACTERS}]*$"
_NO_CONTROL = "no control characters"
_CONTROL = re.compile(f"[{bounds.CONTROL_CHARACTERS}]")
_TIMESTAMP_DOC = (f"RFC 3339 with a zone offset, from {bounds.EARLIEST.isoformat()} "
                  f"to before {bounds.LATEST.isoformat()}")

Id = Annotated[str, msgspec.Meta(
    min_length=1, max_length=bounds.ID_MAX_LENGTH, pattern=_PLAIN,
    description=f"1 to {bounds.ID_MAX_LENGTH} characters, {_NO_CONTROL}")]
# An optional id where an empty string means "not given".
OptionalId = Annotated[str, msgspec.Meta(
    max_length=bounds.ID_MAX_LENGTH, pattern=_PLAIN,
    description=f"at most {bounds.ID_MAX_LENGTH} characters, {_NO_CONTROL}")]
IdempotencyKey = Annotated[str, msgspec.Meta(
    max_length=bounds.IDEMPOTENCY_KEY_MAX_LENGTH, pattern=_PLAIN,
    description=f"at most {bounds.IDEMPOTENCY_KEY_MAX_LENGTH} characters, {_NO_CONTROL}")]
Name = Annotated[str, msgspec.Meta(
    max_length=bounds.NAME_MAX_LENGTH, pattern=_PLAIN,
    description=f"at most {bounds.NAME_MAX_LENGTH} characters, {_NO_CONTROL}")]
Description = Annotated[str, msgspec.Meta(
    max_length=bounds.DESCRIPTION_MAX_LENGTH, description=f"at most {bounds.DESCRIPTION_MAX_LENGTH} characters")]
Currency = Annotated[str, msgspec.Meta(
    pattern=f"^[A-Za-z]{{{bounds.CURRENCY_LETTERS}}}$(?!\\n)",
    description=f"{bounds.CURRENCY_LETTERS}-letter currency code (ISO 4217), ASCII, either case")]
Timestamp = Annotated[str, msgspec.Meta(
    max_length=bounds.TIMESTAMP_MAX_LENGTH, extra_json_schema={"format": "date-time"}, description=_TIMESTAMP_DOC)]
DateNumber = Annotated[int, msgspec.Meta(
    ge=int(bounds.EARLIEST.strftime("%Y%m%d")), lt=int(bounds.LATEST.strftime("%Y%m%d")),
    description="a date as the number YYYYMMDD, within the timestamp bounds")]

# A Flexprice field tally does not honour: accepted only absent, null or empty, so that a value is never dropped.
UnsupportedText = Annotated[str, msgspec.Meta(max_length=0, description="not supported by tally: null or empty")]
UnsupportedList = Annotated[list[Any], msgspec.Meta(max_length=0, description="not supported by tally: null or []")]

MetadataKey = Annotated[str, msgspec.Meta(
    min_length=1, max_length=bounds.METADATA_KEY_MAX_LENGTH, pattern=_PLAIN)]
MetadataValue = Annotated[str, msgspec.Meta(max_length=bounds.METADATA_VALUE_MAX_LENGTH)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], msgspec.Meta(
    max_length=bounds.METADATA_MAX_ENTRIES,
    description=f"at most {bounds.METADATA_MAX_ENTRIES} entries; keys 1 to {bounds.METADATA_KEY_MAX_LENGTH} "
                f"characters ({_NO_CONTROL}), values at most {bounds.METADATA_VALUE_MAX_LENGTH}")]

PropertyKey = Annotated[str, msgspec.Meta(
    min_length=1, max_length=bounds.PROPERTY_KEY_MAX_LENGTH, pattern=_PLAIN)]
PropertyText = Annotated[str, msgspec.Meta(max_length=bounds.PROPERTY_VALUE_MAX_LENGTH)]
PropertyInt = Annotated[int, msgspec.Meta(ge=bounds.PROPERTY_INT_MIN, le=bounds.PROPERTY_INT_MAX)]
# JSON has no NaN or infinity, and msgspec refuses a number beyond the float range: floats are finite.
Property = PropertyText | PropertyInt | float
Properties = Annotated[dict[PropertyKey, Property], msgspec.Meta(
    max_length=bounds.PROPERTIES_MAX_ENTRIES,
    description=f"at most {bounds.PROPERTIES_MAX_ENTRIES} entries; keys 1 to {bounds.PROPERTY_KEY_MAX_LENGTH} "
                f"characters ({_NO_CONTROL}); strings at most {bounds.PROPERTY_VALUE_MAX_LENGTH} characters, "
                f"integers within [{bounds.PROPERTY_INT_MIN}, {bounds.PROPERTY_INT_MAX}], finite numbers")]
Filters = Annotated[
    dict[PropertyKey, Annotated[list[PropertyText], msgspec.Meta(max_length=bounds.FILTER_VALUES_MAX_ENTRIES)]],
    msgspec.Meta(max_length=bounds.FILTERS_MAX_ENTRIES),
]

# An id in a URL path (wallet, customer, invoice, transaction, endpoint): the same rule, documented on the route.
PathId = Annotated[str, Path(min_length=1, max_length=bounds.ID_MAX_LENGTH, pattern=_PLAIN_PATH,
                             description=f"1 to {bounds.ID_MAX_LENGTH} characters, {_NO_CONTROL}")]

# The same rule for an id in a query string (optional: absent or empty means "not given"), and a timestamp there.
QueryId = Annotated[str | None, Query(max_length=bounds.ID_MAX_LENGTH, pattern=_PLAIN_PATH,
                                      description=f"at most {bounds.ID_MAX_LENGTH} characters, {_NO_CONTROL}")]
QueryTimestamp = Annotated[str | None, Query(max_length=bounds.TIMESTAMP_MAX_LENGTH, description=_TIMESTAMP_DOC)]
_PART = f"[0-9]{{1,{bounds.POSITION_PART_DIGITS}}}"
QueryPosition = Annotated[str | None, Query(
    max_length=2 * bounds.POSITION_PART_DIGITS + 1, pattern=f"^({_PART}-{_PART})?$",
    description=f"a customer-log position `ms-seq` (as `read_position` shows it), each part 1 to "
                f"{bounds.POSITION_PART_DIGITS} digits; empty means not given")]
# Pages of a list: where a page starts, and how long it may be.
PageOffset = Annotated[int, Query(ge=0, le=bounds.PAGE_OFFSET_MAX)]
TransactionsLimit = Annotated[int, Query(ge=1, le=bounds.TRANSACTIONS_PAGE_MAX)]
DeliveriesLimit = Annotated[int, Query(ge=1, le=bounds.DELIVERIES_PAGE_MAX)]
CURSOR_PATTERN = "^[0-9]{1,12}(:[0-9]{1,10})?$"
PageCursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN, description="a previous page's next_cursor")]


def cursor_parts(cursor: str | None) -> tuple[int | None, int]:
    """The ledger seq a transactions cursor names (the entry the page starts at) and the matches still to skip
    there (`seq:skip`, written by a filtered scan whose budget ran out while skipping); a 400 when malformed."""
    if cursor is None:
        return None, 0
    if re.fullmatch(CURSOR_PATTERN, cursor) is None:
        raise ValidationFailed("cursor must be a previous page's next_cursor", {"cursor": cursor[:64]})
    seq, _, skip = cursor.partition(":")
    return int(seq), int(skip or 0)


def check_id(name: str, value: str) -> str:
    """The Id rule outside a decoded body (the fast path's URL): a ValidationFailed naming the field."""
    try:
        return msgspec.convert(value, Id)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"{name} must be 1 to {bounds.ID_MAX_LENGTH} characters, {_NO_CONTROL}",
                               {"field": name}) from exc


def without_pattern(bounded: Any) -> Any:
    """A bounded text type (`Id`, `Name`, ...) with the same length bounds and no pattern: for a decoder that checks
    the pattern of every field at once with `holds_control` (the pattern of these types means exactly that)."""
    base, meta = get_args(bounded)
    return Annotated[base, msgspec.Meta(min_length=meta.min_length, max_length=meta.max_length)]


def holds_control(text: str) -> bool:
    """Whether `text` holds a character the `_PLAIN` pattern refuses (C0, DEL or C1: all of them unprintable, so a
    printable text is answered without the regular expression)."""
    return not text.isprintable() and _CONTROL.search(text) is not None
