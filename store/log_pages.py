"""Bounded pages of one customer's log (archive + stream read as one), newest or oldest first, from a position.

A page examines at most `budget` entries: the stream part is one XRANGE/XREVRANGE of at most `budget` entries (read
with the stream's first entry and the account's archived span, in one round trip), the archived part reads only the
segments whose position range meets the page, one after another, until the budget is reached. Whatever the length
of the history, a page costs its budget of entries plus at most one segment more. `next` is the position to
continue from (exclusive), None when the page reached the end of the log.
"""

from typing import Any

import msgspec

from domain.codec import encode_ref
from domain.events import AnyEvent
from domain.identity import AccountRef
from store.archive.manifest import decode_span
from store.archive.reader import segment_rows
from store.entries import LogEntry, decode_entry
from store.eventstore import EventStore
from store.positions import is_after, parse, text
from store.ratecard import RateCards

LAST = (2**64 - 1, 2**64 - 1)
"""The greatest stream position."""


class LogPage(msgspec.Struct, frozen=True):
    entries: list[LogEntry]
    next: str | None


async def log_page(store: EventStore, ref: AccountRef, ascending: bool, after: str | None, budget: int) -> LogPage:
    """Up to `budget` entries past `after` (None: from the start in that order), in order. Nothing lies past the
    first or the last position a stream can have (Redis refuses an exclusive range from there)."""
    if after is not None and max(parse(after)) > LAST[0]:  # beyond every position
        if ascending:
            return LogPage([], None)
        after = f"{LAST[0]}-{LAST[1]}"
    if after is not None and parse(after) == (LAST if ascending else (0, 0)):
        return LogPage([], None)
    keys = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        if ascending:
            pipe.xrange(keys.log(ref), min=f"({after}" if after else "-", max="+", count=budget)
        else:
            pipe.xrevrange(keys.log(ref), max=f"({after}" if after else "+", min="-", count=budget)
        pipe.xrange(keys.log(ref), count=1)
        pipe.hget(keys.archive_through(keys.partition_of(ref)), encode_ref(ref))
        page, first, span_raw = await pipe.execute()
    live = [LogEntry(text(i), f.get(b"e", b""), f.get(b"r")) for i, f in page]
    first_live = text(first[0][0]) if first else None
    span = decode_span(span_raw)
    if ascending:
        older = [] if span is None else await _archived(store, ref, after, first_live, span.through, budget, True)
        entries = (older + live)[:budget]
    else:
        below = first_live if after is None or (first_live and is_after(after, first_live)) else after
        room = budget - len(live)
        older = [] if span is None or room <= 0 else await _archived(store, ref, None, below, span.through, room,
                                                                          False)
        entries = live + older
    await store.rate_cards.load(keys.partition_of(ref), [e.rates for e in entries])
    return LogPage(entries, entries[-1].position if len(entries) >= budget else None)


async def _archived(store: EventStore, ref: AccountRef, after: str | None, below: str | None, through: str,
                    budget: int, ascending: bool) -> list[LogEntry]:
    """Archived entries in (after, below) (and up to `through`), at most `budget`, nearest `after` (ascending) or
    `below` (descending) first; segments are read one by one, in that order, until the budget is reached."""
    low, high = parse(after) if after else (-1, -1), parse(below) if below else (1 << 62, 0)
    if parse(through) < high:
        high = (parse(through)[0], parse(through)[1] + 1)
    partition = store.keys.partition_of(ref)
    records = [r for r in await store.archive.manifest.segments(partition)
               if r.last_ms >= low[0] and r.first_ms <= high[0]]
    found: list[tuple[tuple[int, int], LogEntry]] = []
    for record in records if ascending else reversed(records):
        rows: Any = await segment_rows(partition, record, ref)
        found.extend((key, row.entry) for row in rows if low < (key := parse(row.entry.position)) < high)
        if len(found) >= budget:
            break
    found.sort(key=lambda pair: pair[0], reverse=not ascending)
    return [entry for _, entry in found[:budget]]


def readable_event(entry: LogEntry, cards: RateCards) -> AnyEvent | None:
    """The entry's event, or None for an entry that cannot be decoded (a poison entry, which the projector
    quarantines its account on): a read of the log passes over it instead of failing."""
    try:
        return decode_entry(entry.payload, entry.rates, cards)
    except Exception:  # whatever the bytes: undecodable is not an event
        return None
