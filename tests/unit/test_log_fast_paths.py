"""The cheaper steps of replay's fold (store/entries.py fold_log) against the forms they replaced.

- `decode_entry` attaches a usage entry's rate card to the decoded event in place: the same event as a copy with
  the prices attached (`msgspec.structs.replace`), for every kind of event.
"""

import hashlib

import msgspec
from hypothesis import HealthCheck, given, settings
from redis.asyncio import Redis

from domain.codec import decode_event, encode_event, encode_prices
from domain.events import AnyEvent, UsageRecorded
from store.entries import LogEntry, decode_entry
from store.keys import Keys
from store.ratecard import RateCards
from tests.unit.test_usage_run import histories


def by_digest(events: list[AnyEvent], broken: int | None) -> tuple[list[LogEntry], RateCards]:
    """The log as the store holds it: each usage entry without its prices, naming its rate card by digest."""
    cards, entries = RateCards(Redis(), Keys()), list[LogEntry]()
    for n, event in enumerate(events, start=1):
        if n == broken:
            entries.append(LogEntry(f"{n}-0", b"\xc1 not an event"))
        elif isinstance(event, UsageRecorded):
            blob = encode_prices(event.prices)
            digest = hashlib.sha256(blob).digest()[:16]
            cards.remember({digest: blob})
            entries.append(LogEntry(f"{n}-0", encode_event(msgspec.structs.replace(event, prices=())), digest))
        else:
            entries.append(LogEntry(f"{n}-0", encode_event(event)))
    return entries, cards


def copied(entry: LogEntry, cards: RateCards) -> AnyEvent:
    """The decode as it was: the prices attached to a copy of the decoded event."""
    event = decode_event(entry.payload)
    if entry.rates is not None and isinstance(event, UsageRecorded):
        return msgspec.structs.replace(event, prices=cards.prices(entry.rates))
    return event


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_decoding_attaches_the_rate_card_as_the_copy_did(events: list[AnyEvent]) -> None:
    entries, cards = by_digest(events, None)
    for entry in entries:
        decoded, expected = decode_entry(entry.payload, entry.rates, cards), copied(entry, cards)
        assert type(decoded) is type(expected)
        assert decoded == expected
        assert encode_event(decoded) == encode_event(expected)
