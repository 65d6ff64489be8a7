"""A bulk's events are decoded without the text fields' pattern, the fields then checked at once
(api/events.py `decode_bulk_event`): the same value, or the same error, as the bounded decoder gives."""

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from api.bounded import holds_control
from api.events import _event_decoder, decode_bulk_event

FIELDS = ["event_name", "external_customer_id", "customer_id", "event_id", "timestamp", "source", "properties"]
CHARACTERS = st.sampled_from(["a", "Z", "0", " ", "\x00", "\x1f", "\n", "\t", "\x7f", "\x80", "\x9f", "\xa0", "é",
                              "\u2028", "\u200b", "😀", ":", "{"])
LENGTHS = [0, 1, 2, 127, 128, 129, 254, 255, 256, 1024, 1025]


@st.composite
def texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.text(CHARACTERS, max_size=6))
    body = "x" * draw(st.sampled_from(LENGTHS))
    return body + draw(st.text(CHARACTERS, max_size=2))


VALUES = st.one_of(texts(), st.none(), st.integers(min_value=-2**64, max_value=2**64), st.floats(allow_nan=False),
                   st.booleans(), st.lists(st.integers(), max_size=2))
PROPERTIES = st.one_of(st.dictionaries(texts(), VALUES, max_size=4), st.builds(lambda n: {f"k{i}": i for i in range(n)},
                                                                              st.sampled_from([49, 50, 51])), VALUES)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from([*FIELDS, "unknown"]), unique=True))
    event = {name: draw(PROPERTIES if name == "properties" else VALUES) for name in chosen}
    if draw(st.booleans()):
        event.setdefault("event_name", draw(texts()))
        event.setdefault("external_customer_id", draw(texts()))
    return event


VALID = {"event_name": "api_call", "external_customer_id": "cus_1", "customer_id": "", "event_id": "evt_1",
         "timestamp": "2026-11-27T21:00:00Z", "source": "bench", "properties": {"tokens": 3, "model": "small"}}


@st.composite
def one_field_off(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one field, or one property key or value, drawn anew (or left out, or one added)."""
    event = dict(VALID)
    name = draw(st.sampled_from([*FIELDS, "unknown", "property key", "property value"]))
    if name == "property key":
        event["properties"] = {**VALID["properties"], draw(texts()): 1}
    elif name == "property value":
        event["properties"] = {"tokens": draw(VALUES)}
    elif draw(st.booleans()) and name in event:
        del event[name]
    else:
        event[name] = draw(PROPERTIES if name == "properties" else VALUES)
    return event


def outcome(decode: Any, raw: bytes) -> Any:
    try:
        return ("ok", msgspec.structs.asdict(decode(raw)))
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        return (type(exc), str(exc))


@settings(max_examples=1500, deadline=None)
@given(events())
def test_a_bulk_event_decodes_to_what_the_bounded_decoder_gives(event: dict[str, Any]) -> None:
    raw = msgspec.Raw(json.dumps(event).encode())
    assert outcome(decode_bulk_event, raw) == outcome(_event_decoder.decode, raw)


@settings(max_examples=1500, deadline=None)
@given(one_field_off())
def test_an_event_with_one_field_off_decodes_to_what_the_bounded_decoder_gives(event: dict[str, Any]) -> None:
    raw = msgspec.Raw(json.dumps(event).encode())
    assert outcome(decode_bulk_event, raw) == outcome(_event_decoder.decode, raw)


def test_every_control_character_and_only_those_is_held() -> None:
    for code in range(0x3000):
        assert holds_control(f"a{chr(code)}b") == (code < 0x20 or 0x7F <= code <= 0x9F), hex(code)
