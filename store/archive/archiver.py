"""The archiver: moves folded, old entries of a partition's customer streams into a Parquet segment, safely.

The order is the safety: write the segment, make it durable, commit it to the manifest under the partition's
archive lease (its fencing token checked in the same Lua step), and only then trim each account's stream exactly
up to its archived-through position. A round killed at any step is finished by the next: an uncommitted segment
is an orphan nobody reads (its name carries the writer's fencing token); a committed one stays pending until the
trim of each of its accounts is done, and the next round first checks its file against the committed digest,
then trims. A pending segment that is missing or corrupted is named and stops the partition: nothing is trimmed.
"""

import asyncio
import hashlib
import os
import signal

import msgspec
from redis.asyncio import Redis

from domain.identity import AccountRef
from store.archive.eligible import Batch, eligible_batch, now_ms
from store.archive.manifest import COMMITTED, LEASE_LOST, Manifest, SegmentRecord, Span
from store.archive.objects import SegmentFiles
from store.archive.reader import ArchiveBroken, segment_rows
from store.archive.segments import ArchivedEntry, encode_segment
from store.entries import LogEntry
from store.keys import Keys
from store.positions import parse
from store.ratecard import RateCards


class ArchiveSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Built from the process's Settings by cli/components.py; only what no TALLY_* variable sets has a default."""

    holder: str
    after_ms: int
    lease_ttl_ms: int
    trim_chunk: int
    max_rows: int = 200_000
    stop_at: str = ""  # tests only: SIGKILL (or `pause:` SIGSTOP) this process at written|durable|committed|trimming


class LeaseLost(Exception):
    """Another archiver holds the partition now: this one stops (its uncommitted segment is an orphan)."""


class RoundReport(msgspec.Struct):
    partition: int
    segments: list[SegmentRecord] = []
    rows: int = 0
    accounts: int = 0
    trimmed: int = 0
    finished: list[int] = []  # pending segments of an earlier round whose trim this round completed
    problem: str = ""


class Archiver:
    def __init__(self, redis: Redis, keys: Keys, files: SegmentFiles, settings: ArchiveSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.files = files
        self.settings = settings
        self.manifest = Manifest(redis, keys)
        self.rate_cards = RateCards(redis, keys)

    async def run(self, partition: int, dry_run: bool = False) -> RoundReport:
        """One round on one partition under its archive lease (taken here, given back at the end)."""
        report = RoundReport(partition)
        lease = await self.manifest.take_lease(partition, self.settings.holder, self.settings.lease_ttl_ms, None)
        if lease is None:
            report.problem = "another archiver holds the partition's archive lease"
            return report
        try:
            await self._round(partition, lease, dry_run, report)
        except (ArchiveBroken, LeaseLost) as exc:
            report.problem = str(exc) or type(exc).__name__
        finally:
            await self.manifest.release_lease(partition, lease)
        return report

    async def _round(self, partition: int, lease: str, dry_run: bool, report: RoundReport) -> None:
        if not dry_run:
            report.finished = await self._finish_pending(partition, lease, report)
            await self._remove_orphans(partition)
        while True:
            batch = await eligible_batch(self.redis, self.keys, self.manifest, partition, self.settings.after_ms,
                                         self.settings.max_rows)
            if not batch.accounts:
                return
            report.rows += batch.rows
            report.accounts += len(batch.accounts)
            if dry_run:
                return
            await self._renew(partition, lease)
            report.segments.append(await self._archive(partition, lease, batch))
            await self._finish_pending(partition, lease, report)
            if batch.rows < self.settings.max_rows:
                return

    async def _archive(self, partition: int, lease: str, batch: Batch) -> SegmentRecord:
        rows = [ArchivedEntry(ref, entry) for ref, _, entries in batch.accounts for entry in entries]
        await self.rate_cards.load(partition, [row.entry.rates for row in rows])
        data = await asyncio.to_thread(encode_segment, rows, self.rate_cards)
        number = max((s.number for s in await self.manifest.segments(partition)), default=0) + 1
        token = lease.rpartition("#")[2]
        name = f"{folder(partition)}/segment-{number:09d}-{token}.parquet"
        self._stop_at("written")
        url = await self.files.put(name, data)
        self._stop_at("durable")
        record = _record(number, url, data, batch, await now_ms(self.redis))
        changes = [(ref, old, _span(old, entries)) for ref, old, entries in batch.accounts]
        code = await self.manifest.commit(partition, lease, record, changes)
        if code == LEASE_LOST:
            raise LeaseLost(f"the archive lease of partition {partition} was lost before segment {number} was "
                            f"committed; its file {url} is an orphan")
        if code != COMMITTED:
            raise LeaseLost(f"the manifest of partition {partition} moved under segment {number}; not committed")
        self._stop_at("committed")
        return record

    async def _finish_pending(self, partition: int, lease: str, report: RoundReport) -> list[int]:
        """Check every committed, untrimmed segment against its digest, then trim its accounts' streams."""
        pending = await self.manifest.pending(partition)
        if not pending:
            return []
        records = {s.number: s for s in await self.manifest.segments(partition)}
        accounts: dict[int, list[AccountRef]] = {}
        for number in pending:
            rows = await segment_rows(partition, records[number])  # ArchiveBroken: nothing is trimmed
            accounts[number] = sorted({row.ref for row in rows})
        for number in pending:
            refs, chunk = accounts[number], max(1, self.settings.trim_chunk)
            for start in range(0, max(1, len(refs)), chunk):
                last = start + chunk >= len(refs)
                removed = await self.manifest.trim(partition, lease, refs[start:start + chunk],
                                                   number if last else None)
                if removed < 0:
                    raise LeaseLost(f"the archive lease of partition {partition} was lost while trimming")
                report.trimmed += removed
                self._stop_at("trimming")
        return pending

    async def _remove_orphans(self, partition: int) -> None:
        """Delete the files of rounds that never committed (killed, or fenced off): nobody reads them, but a query
        over the folder would count their rows twice."""
        committed = {_name(s.url) for s in await self.manifest.segments(partition)}  # by name: URLs may be spelt
        for url in await self.files.listed(folder(partition)):  # differently from one configuration to another
            if _name(url) not in committed:
                await self.files.delete(url)

    async def _renew(self, partition: int, lease: str) -> None:
        held = await self.manifest.take_lease(partition, self.settings.holder, self.settings.lease_ttl_ms, lease)
        if held != lease:
            if held is not None:
                await self.manifest.release_lease(partition, held)
            raise LeaseLost(f"the archive lease of partition {partition} was lost")

    def _stop_at(self, point: str) -> None:
        """Fault injection for the tests (TALLY_TEST_ARCHIVE_STOP_AT, read by `tally archive` only)."""
        if self.settings.stop_at == point:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.settings.stop_at == f"pause:{point}":
            os.kill(os.getpid(), signal.SIGSTOP)


def folder(partition: int) -> str:
    return f"partition={partition:03d}"


def _name(url: str) -> str:
    return url.rstrip("/").rpartition("/")[2]


def _span(old: Span | None, entries: list[LogEntry]) -> Span:
    return Span(old.first if old else entries[0].position, entries[-1].position)


def _record(number: int, url: str, data: bytes, batch: Batch, written_ms: int) -> SegmentRecord:
    positions = [parse(e.position)[0] for _, _, entries in batch.accounts for e in (entries[0], entries[-1])]
    return SegmentRecord(number=number, url=url, rows=batch.rows, accounts=len(batch.accounts),
                         sha256=hashlib.sha256(data).hexdigest(), first_ms=min(positions), last_ms=max(positions),
                         written_ms=written_ms)

