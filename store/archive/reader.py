"""Archived entries of one account, read from the segments the manifest names (each checked against its digest).

`EventStore.read_raw_log` joins them with the customer stream: per account the archive holds the positions up
to its archived-through position, the stream the rest (and, until it is trimmed, some of the same: only what the
stream no longer has is taken from the archive). A partition's segments can be preloaded once (a replay reads
every account of a partition) instead of once per account.
"""

import hashlib
from typing import Any

import msgspec
import pyarrow as pa
from redis.asyncio import Redis

from domain.identity import AccountRef
from store.archive.manifest import Manifest, SegmentRecord, Span, decode_span
from store.archive.objects import MissingSegment, read_file
from store.archive.segments import ArchivedEntry, decode_segment, decode_segment_groups
from store.entries import LogEntry
from store.keys import Keys
from store.positions import is_after, parse


class ArchiveBroken(Exception):
    """A segment the manifest names is missing, corrupted or out of order; the message names it."""


class Preload(msgspec.Struct):
    spans: dict[AccountRef, Span]
    entries: dict[AccountRef, list[LogEntry]]


async def segment_rows(partition: int, record: SegmentRecord, ref: AccountRef | None = None) -> list[ArchivedEntry]:
    """The rows of a committed segment (one account's, if given), after checking the file is the one committed."""
    data, name = await _checked(partition, record)
    try:
        return decode_segment(data, ref)
    except (pa.ArrowException, ValueError) as exc:
        raise ArchiveBroken(f"{name} cannot be read: {exc}") from exc


async def segment_groups(partition: int, record: SegmentRecord) -> dict[AccountRef, list[LogEntry]]:
    """The entries of a committed segment per account, in file order (checked as segment_rows does)."""
    data, name = await _checked(partition, record)
    try:
        return decode_segment_groups(data)
    except (pa.ArrowException, ValueError) as exc:
        raise ArchiveBroken(f"{name} cannot be read: {exc}") from exc


async def _checked(partition: int, record: SegmentRecord) -> tuple[bytes, str]:
    """The segment's bytes, if they are the ones committed, and how to name it."""
    name = f"segment {record.number} of partition {partition} ({record.url})"
    try:
        data = await read_file(record.url)
    except MissingSegment as exc:
        raise ArchiveBroken(f"{name} is missing") from exc
    if hashlib.sha256(data).hexdigest() != record.sha256:
        raise ArchiveBroken(f"{name} is corrupted: its digest is not the one committed")
    return data, name


class ArchiveReader:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.manifest = Manifest(redis, keys)
        self.keys = keys
        self.preloaded: dict[int, Preload] = {}

    async def before(self, ref: AccountRef, after: str, first_live: str | None, raw_span: Any) -> list[LogEntry]:
        """The account's archived entries after `after` that the stream (starting at `first_live`) no longer has.
        `raw_span` is the manifest's span of the account as read after the stream, so that it covers everything
        trimmed before."""
        span = decode_span(raw_span)
        if span is None or not is_after(span.through, after):
            return []
        if first_live is not None and not is_after(first_live, span.first):
            return []  # the stream still holds every archived entry
        low, high = parse(after), parse(span.through)
        below = parse(first_live) if first_live is not None else None
        chosen: list[LogEntry] = []
        reached, last = low, None  # the last entry chosen, its position parsed
        for entry in await self._entries(ref, span, after):
            key = parse(entry.position)  # once per entry: a replay reads every archived entry of a partition
            if low < key <= high and (below is None or key < below):
                if last is not None and key <= reached:
                    raise ArchiveBroken(f"the archive of {ref.tenant_id}/{ref.environment_id}/{ref.customer_id} "
                                        f"holds {entry.position} after {last.position}: a segment repeats or "
                                        "misorders it")
                reached, last = key, entry
                chosen.append(entry)
        return chosen

    async def _entries(self, ref: AccountRef, span: Span, after: str) -> list[LogEntry]:
        partition = self.keys.partition_of(ref)
        preload = self.preloaded.get(partition)
        if preload is not None and preload.spans.get(ref) == span:
            return preload.entries.get(ref, [])
        low_ms, high_ms = max(parse(span.first)[0], parse(after)[0]), parse(span.through)[0]
        entries: list[LogEntry] = []
        for record in await self.manifest.segments(partition):
            if record.last_ms >= low_ms and record.first_ms <= high_ms:
                entries.extend(row.entry for row in await segment_rows(partition, record, ref))
        return entries

    async def preload(self, partition: int) -> None:
        """Read every segment of the partition once, for the accounts read next (see `forget`)."""
        spans = await self.manifest.all_spans(partition)
        grouped: dict[AccountRef, list[LogEntry]] = {}
        for record in await self.manifest.segments(partition):
            for ref, entries in (await segment_groups(partition, record)).items():
                grouped.setdefault(ref, []).extend(entries)
        self.preloaded[partition] = Preload(spans, grouped)

    def forget(self, partition: int) -> None:
        self.preloaded.pop(partition, None)
