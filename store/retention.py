"""Retention of what grows with time in Redis: alerts streams with their emitted keys, the feed, the operations
streams and finished webhook deliveries. Each step removes a bounded amount, and never what a reader still needs:
`*_bound` computes the lowest position any reader holds and names that reader (README: Retention).

Why an alerts-stream entry and its emitted key may go together once they are below the feed's first entry: a key
exists so that folding the same event again cannot emit its notice twice. Only the projector emits, and it folds
only what its feed still holds; the feed is trimmed below the live checkpoint and below a running replay's floor,
so the events a replay's next generation will fold again are all still in the feed. A notice is emitted (its id
is the server's time then) after its event was appended (the event's feed id, same clock), so a notice older than
the feed's first entry belongs to an event that left the feed: nothing can fold it again with notices. A refold by
`tally dlq retry` emits only for entries after the quarantined snapshot's position (even from zero), which were
never emitted; `tally replay` emits nothing.
"""

from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from store.generation import live_generation
from store.keys import Keys
from store.positions import ORIGIN, parse, text
from store.scripts import Scripts
from store.webhooks import Webhooks


class Bound(msgspec.Struct, frozen=True):
    """Entries below `position` may go; `held_by` names the reader that set it."""

    position: str
    held_by: str


def lowest(bounds: list[Bound]) -> Bound:
    return min(bounds, key=lambda bound: parse(bound.position))


def after(position: str) -> str:
    """The bound that lets everything up to and including `position` go."""
    ms, seq = parse(position)
    return f"{ms}-{seq + 1}"


def older_than(ms: int) -> str:
    """The bound that lets every entry written before epoch `ms` go."""
    return f"{max(0, ms)}-0"


def _field(info: dict[Any, Any], name: str) -> Any:
    return info.get(name, info.get(name.encode()))


class Retention:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = Scripts(redis)

    async def _stream_info(self, name: str) -> dict[Any, Any] | None:
        try:
            info: Any = await self.redis.xinfo_stream(name)
        except ResponseError:  # no such stream
            return None
        return dict(info)

    async def feed_bound(self, partition: int) -> Bound:
        """Below the live generation's checkpoint and below a running replay's floor."""
        live = msgspec.structs.replace(self.keys, generation=await live_generation(self.redis, self.keys))
        checkpoint: Any = await self.redis.get(live.checkpoint(partition))
        bounds = [Bound(text(checkpoint) if checkpoint else ORIGIN, "projector checkpoint")]
        floor: Any = await self.redis.get(self.keys.retention_floor(partition))
        if floor is not None:
            bounds.append(Bound(text(floor), "replay floor"))
        return lowest(bounds)

    async def trim_feed(self, partition: int) -> int:
        """Exactly below the bound (an approximate trim frees nothing on a short stream)."""
        bound = await self.feed_bound(partition)
        return int(await self.redis.xtrim(self.keys.feed(partition), minid=bound.position, approximate=False))

    async def alerts_bound(self, partition: int, now_ms: int, keep_ms: int) -> Bound:
        """Older than the retention, queued by the webhook sender, consumed by every consumer group (acknowledged),
        and older than the feed's first entry (see the module's docstring)."""
        bounds = [Bound(older_than(now_ms - keep_ms), "age"),
                  Bound(after(await Webhooks(self.redis, self.keys).checkpoint(partition)), "webhook sender")]
        bounds += await self._group_bounds(self.keys.notices(partition))
        feed = await self._stream_info(self.keys.feed(partition))
        if feed is None:
            bounds.append(Bound(ORIGIN, "feed"))
        else:
            first = _field(feed, "first-entry")
            position = text(first[0]) if first else text(_field(feed, "last-generated-id"))
            bounds.append(Bound(older_than(parse(position)[0]), "feed"))
        return lowest(bounds)

    async def _group_bounds(self, stream: str) -> list[Bound]:
        try:
            groups: Any = await self.redis.xinfo_groups(stream)
        except ResponseError:
            return []
        bounds = []
        for group in groups:
            name = text(_field(group, "name"))
            position = after(text(_field(group, "last-delivered-id")))
            if int(_field(group, "pending") or 0):
                pending: Any = await self.redis.xpending(stream, name)
                position = text(pending["min"])
            bounds.append(Bound(position, f"consumer group {name}"))
        return bounds

    async def trim_alerts(self, partition: int, now_ms: int, keep_ms: int, limit: int) -> int:
        """At most `limit` notices below the bound, with their emitted keys, in one script."""
        bound = await self.alerts_bound(partition, now_ms, keep_ms)
        if bound.position == ORIGIN:
            return 0
        keys = [self.keys.notices(partition), self.keys.notices_emitted(partition)]
        return int(await self.scripts.trim_alerts(keys=keys, args=[bound.position, limit]))

    async def trim_operations(self, partition: int, now_ms: int, keep_ms: int) -> int:
        bound = older_than(now_ms - keep_ms)
        return int(await self.redis.xtrim(self.keys.operations(partition), minid=bound, approximate=False))

    async def prune_deliveries(self, now_ms: int, keep_ms: int, limit: int) -> int:
        """At most `limit` deliveries that finished (delivered or dead) before the retention: out of the tenant's
        list, then the delivery itself, then its index entry (a crash between them leaves what the next run
        finishes). One still pending (queued again) is only taken out of the index."""
        finished = self.keys.webhook_finished()
        ids: Any = await self.redis.zrangebyscore(finished, "-inf", f"({now_ms - keep_ms}", start=0, num=limit)
        if not ids:
            return 0
        webhooks = Webhooks(self.redis, self.keys)
        found = [await webhooks.get(text(i)) for i in ids]
        due: Any = await self.redis.zmscore(self.keys.webhook_due(), ids)
        gone = [d for d, score in zip(found, due, strict=True) if d is not None and d.status != "pending"
                and score is None]
        for step in ("list", "delivery"):
            async with self.redis.pipeline(transaction=False) as pipe:
                for d in gone:
                    if step == "list":
                        pipe.zrem(self.keys.webhook_deliveries(d.tenant_id, d.environment_id), d.id)
                    else:
                        pipe.delete(self.keys.webhook_delivery(d.id))
                await pipe.execute()
        await self.redis.zrem(finished, *ids)
        return len(gone)
