"""What a partition may archive now: per account, the entries every projection has folded, older than the
retention and below the partition's checkpoint, after what the archive already holds.

Every projection: the live generation's snapshot, and the neighbouring generations' where they exist (a replay
building the next one, or the previous one a few seconds after a switch, still read by slow readers). A
quarantined account (in any of them) is left alone: its stream waits for the operator.
"""

from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_ref
from domain.identity import AccountRef
from store.archive.manifest import Manifest, Span
from store.entries import LogEntry
from store.generation import live_generation
from store.keys import Keys
from store.positions import ORIGIN, is_after, parse, text

CHUNK = 200
LAST_SEQ = (1 << 64) - 1


class Batch(msgspec.Struct):
    """Accounts (sorted) with their archived span so far and the entries to archive next, in stream order."""

    accounts: list[tuple[AccountRef, Span | None, list[LogEntry]]]
    rows: int = 0


async def now_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def eligible_batch(redis: Redis, keys: Keys, manifest: Manifest, partition: int, after_ms: int,
                         max_rows: int) -> Batch:
    generation = await live_generation(redis, keys)
    live = msgspec.structs.replace(keys, generation=generation)
    checkpoint: Any = await redis.get(live.checkpoint(partition))
    bound_ms = min(await now_ms(redis) - after_ms - 1, parse(text(checkpoint) if checkpoint else ORIGIN)[0])
    batch = Batch([])
    if bound_ms <= 0:
        return batch
    members: Any = await redis.smembers(keys.accounts(partition))
    refs = sorted(decode_ref(m) for m in members)
    for start in range(0, len(refs), CHUNK):
        chunk = refs[start:start + CHUNK]
        limits = await _folded_limits(redis, keys, generation, chunk)
        spans = await manifest.spans(partition, chunk)
        await _take(redis, keys, batch, list(zip(chunk, spans, limits, strict=True)), f"{bound_ms}-{LAST_SEQ}",
                    max_rows)
        if batch.rows >= max_rows:
            break
    return batch


async def _take(redis: Redis, keys: Keys, batch: Batch, accounts: Sequence[tuple[AccountRef, Span | None, str | None]],
                bound: str, max_rows: int) -> None:
    wanted = [(ref, span, bound if limit is None or is_after(limit, bound) else limit)
              for ref, span, limit in accounts if limit is not None and limit != ORIGIN]
    async with redis.pipeline(transaction=False) as pipe:
        for ref, span, upper in wanted:
            pipe.xrange(keys.log(ref), min=f"({span.through}" if span else "-", max=upper,
                        count=max(1, max_rows - batch.rows))
        replies: list[Any] = await pipe.execute()
    for (ref, span, _), page in zip(wanted, replies, strict=True):
        room = max_rows - batch.rows
        entries = [LogEntry(text(i), f.get(b"e", b""), f.get(b"r")) for i, f in page[:room]]
        if entries:
            batch.accounts.append((ref, span, entries))
            batch.rows += len(entries)


async def _folded_limits(redis: Redis, keys: Keys, generation: int, refs: Sequence[AccountRef]) -> list[str | None]:
    """Per account, the least position its snapshots are folded up to (None: not archivable now)."""
    generations = [g for g in (generation - 1, generation, generation + 1) if g >= 1]
    async with redis.pipeline(transaction=False) as pipe:
        for ref in refs:
            for g in generations:
                pipe.hmget(msgspec.structs.replace(keys, generation=g).snapshot(ref), ["p", "q"])
        replies: list[Any] = await pipe.execute()
    limits: list[str | None] = []
    for n, _ in enumerate(refs):
        snaps = dict(zip(generations, replies[n * len(generations):(n + 1) * len(generations)], strict=True))
        positions = [text(p) for p, _ in snaps.values() if p]
        quarantined = any(q for _, q in snaps.values())
        if quarantined or not snaps[generation][0]:
            limits.append(None)
        else:
            limits.append(min(positions, key=parse))
    return limits
