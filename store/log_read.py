"""Customer logs read whole, as stored: what only the archive still holds, then the stream, page by page.

The stream's pages are XRANGE replies. On a single server the command goes to redis-py named as bytes, for which it
runs no response callback, so a page comes as the server sent it (each entry's fields a flat list) and is read in
place; a cluster client looks the name up as a str to route it, so there a page comes parsed (each entry's fields a
dict). Both give the same entries (tests/unit/test_log_read.py). While a rebuild runs, its pages go over a connection
of its own on a single server (`direct`, store/pipelined.py), whose replies always come as sent.
"""

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from redis.asyncio import Redis

from domain.codec import encode_ref
from domain.errors import StoreUnavailable
from domain.identity import AccountRef
from store.archive.reader import ArchiveReader
from store.connect import unparsed_name
from store.entries import LogEntry
from store.keys import Keys
from store.node_links import run_together
from store.pipelined import PipelinedConnection
from store.positions import ORIGIN, is_after, text
from store.ratecard import RateCards

LOG_PAGE = 2000
READ_ATTEMPTS = 20

PAYLOAD, RATES = b"e", b"r"
"""The fields the append scripts write in a customer-stream entry, in this order (the rate card digest of usage
only)."""
RATES_OF = attrgetter("rates")


def log_entries(page: Sequence[Any]) -> list[LogEntry]:
    """A page of XRANGE as the server sent it ([[id, [name, value, ...]], ...]) or as redis-py parses it
    ([(id, {name: value}), ...]). An entry without a payload gets an empty one (the fold quarantines its account);
    a field named twice counts with its last value, as in redis-py's dict."""
    entries = []
    for entry_id, fields in page:
        if type(fields) is list:
            size = len(fields)
            if size == 2 and fields[0] == PAYLOAD:  # what the append scripts write: read in place
                entries.append(LogEntry(entry_id.decode(), fields[1]))
                continue
            if size == 4 and fields[0] == PAYLOAD and fields[2] == RATES:
                entries.append(LogEntry(entry_id.decode(), fields[1], fields[3]))
                continue
            fields = dict(zip(fields[::2], fields[1::2], strict=False))
        entries.append(LogEntry(text(entry_id), fields.get(PAYLOAD, b""), fields.get(RATES)))
    return entries


def _trimmed_under(live: Sequence[LogEntry], first_live: str | None) -> bool:
    """The archiver trimmed the stream while it was read: its first entry moved past what the read began with."""
    return bool(live) and (first_live is None or is_after(first_live, live[0].position))


class LogReader:
    """Reads customer logs whole (archive + stream) and loads the rate cards their entries name into `cards`."""

    def __init__(self, redis: Redis, keys: Keys, archive: ArchiveReader, cards: RateCards) -> None:
        self.redis = redis
        self.keys = keys
        self.archive = archive
        self.cards = cards
        self.xrange = unparsed_name(redis, "XRANGE")
        self.direct: PipelinedConnection | None = None  # the pages' connection while a rebuild runs (projector/replay)

    async def log(self, ref: AccountRef, after: str = ORIGIN) -> list[LogEntry]:
        """The customer's whole log after `after`. Read again if the archiver trimmed the stream while it was read."""
        for _ in range(READ_ATTEMPTS):
            live, first_live, span = await self._stream(ref, after)
            if _trimmed_under(live, first_live):
                continue  # an entry it read may have taken others with it
            archived = await self.archive.before(ref, after, first_live, span)
            await self.cards.load(self.keys.partition_of(ref), [e.rates for e in archived])
            return archived + live
        raise StoreUnavailable("the customer stream kept being trimmed while it was read; try again")

    async def logs(self, refs: Sequence[AccountRef]) -> list[list[LogEntry]]:
        """`log(ref)` of every account of `refs`, the first page of each in one round trip (the accounts' archived
        spans read after all of them, one HMGET a partition); an account with more than a page, or whose stream was
        trimmed under the read, is read alone."""
        partitions: dict[int, list[int]] = {}  # partition -> indexes in `refs`
        commands: list[tuple[Any, ...]] = []
        for index, ref in enumerate(refs):
            commands += self._page(ref, f"({ORIGIN}")
            partitions.setdefault(self.keys.partition_of(ref), []).append(index)
        for partition, indexes in partitions.items():
            commands.append(("HMGET", self.keys.archive_through(partition), *[encode_ref(refs[i]) for i in indexes]))
        replies = await run_together(self.redis, self.direct, commands)
        spans: list[Any] = [None] * len(refs)
        for indexes, found in zip(partitions.values(), replies[2 * len(refs):], strict=True):
            for index, span in zip(indexes, found, strict=True):
                spans[index] = span
        logs: list[list[LogEntry]] = []
        for index, ref in enumerate(refs):
            page, first = replies[2 * index: 2 * index + 2]
            live, first_live = log_entries(page), text(first[0][0]) if first else None
            if len(page) >= LOG_PAGE or _trimmed_under(live, first_live):
                logs.append(await self.log(ref))  # a long or moving stream: paged and retried alone
                continue
            logs.append(await self.archive.before(ref, ORIGIN, first_live, spans[index]) + live)
        await self._load_cards(refs, logs)
        return logs

    async def _load_cards(self, refs: Sequence[AccountRef], logs: Sequence[list[LogEntry]]) -> None:
        """The rate cards the entries of `logs` name, one HMGET a partition."""
        digests: dict[int, set[bytes | None]] = {}
        for ref, log in zip(refs, logs, strict=True):
            digests.setdefault(self.keys.partition_of(ref), set()).update(map(RATES_OF, log))
        for partition, named in digests.items():
            await self.cards.load(partition, list(named))

    async def _stream(self, ref: AccountRef, after: str) -> tuple[list[LogEntry], str | None, Any]:
        """The customer stream after `after`, page by page (rate cards loaded); with each page, in the same round
        trip and after it, the stream's first entry now and the account's archived span (store.archive)."""
        entries: list[LogEntry] = []
        start = f"({after}"
        while True:
            span_of = ("HGET", self.keys.archive_through(self.keys.partition_of(ref)), encode_ref(ref))
            page, first, span = await run_together(self.redis, self.direct, [*self._page(ref, start), span_of])
            live = log_entries(page)
            await self.cards.load(self.keys.partition_of(ref), list(set(map(RATES_OF, live))))
            entries.extend(live)
            if len(page) < LOG_PAGE:
                return entries, text(first[0][0]) if first else None, span
            start = f"({live[-1].position}"

    def _page(self, ref: AccountRef, start: str) -> list[tuple[Any, ...]]:
        """A page of the customer stream from `start`, then (after it, in the same round trip) the stream's first
        entry now; the caller reads the account's archived span after both."""
        log = self.keys.log(ref)
        return [(self.xrange, log, start, "+", "COUNT", LOG_PAGE), (self.xrange, log, "-", "+", "COUNT", 1)]
