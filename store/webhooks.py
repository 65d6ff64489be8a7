"""Webhook endpoints and deliveries in Redis: the queue a sender works through, with visible state."""

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from store.keys import Keys
from store.lease import Lease, give_back, take
from store.positions import ORIGIN, text
from store.scripts import Scripts

DeliveryStatus = Literal["pending", "delivered", "dead"]


PayloadFormat = Literal["flexprice", "tally"]
"""What an endpoint's deliveries carry (projector/webhook_payloads.py)."""


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    url: str
    secret: str
    event_types: tuple[str, ...] = ()
    created_at: str = ""
    payload_format: PayloadFormat = "tally"  # what endpoints stored before formats existed get


class Delivery(msgspec.Struct, kw_only=True):
    id: str
    endpoint_id: str
    tenant_id: str
    environment_id: str
    event_type: str
    payload: str
    status: DeliveryStatus = "pending"
    attempts: int = 0
    last_error: str = ""
    last_status: int = 0
    created_ms: int = 0
    delivered_ms: int = 0


class NoticeEntry(msgspec.Struct, frozen=True):
    """One entry of a notices stream: its position, the key it was emitted under and the notice as encoded
    (domain.codec.decode_notice reads it; a webhook delivers these bytes as they are)."""

    position: str
    key: str
    payload: bytes


_endpoint_encoder = msgspec.msgpack.Encoder()
_endpoint_decoder = msgspec.msgpack.Decoder(Endpoint)
_delivery_encoder = msgspec.json.Encoder()
_delivery_decoder = msgspec.json.Decoder(Delivery)


def delivery_id(notice_key: str, endpoint_id: str) -> str:
    """Stable across retries and restarts: the webhook-id receivers deduplicate on."""
    return "msg_" + hashlib.sha256(f"{notice_key}|{endpoint_id}".encode()).hexdigest()[:26]


class Webhooks:
    """Every write of the sender is fenced: it carries the lease value and is refused (False) once that lease is
    not the holder's any more, so a paused sender that lost its lease cannot overwrite its successor's work."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = Scripts(redis)

    async def add_endpoint(self, tenant_id: str, environment_id: str, endpoint: Endpoint) -> None:
        await self.redis.hset(self.keys.webhook_endpoints(tenant_id, environment_id), endpoint.id,
                              _endpoint_encoder.encode(endpoint))

    async def endpoint_count(self, tenant_id: str, environment_id: str) -> int:
        return int(await self.redis.hlen(self.keys.webhook_endpoints(tenant_id, environment_id)))

    async def endpoints(self, tenant_id: str, environment_id: str) -> list[Endpoint]:
        raw: Any = await self.redis.hvals(self.keys.webhook_endpoints(tenant_id, environment_id))
        return sorted((_endpoint_decoder.decode(v) for v in raw), key=lambda e: e.id)

    async def delete_endpoint(self, tenant_id: str, environment_id: str, endpoint_id: str) -> bool:
        return bool(await self.redis.hdel(self.keys.webhook_endpoints(tenant_id, environment_id), endpoint_id))

    async def checkpoint(self, partition: int) -> str:
        value: Any = await self.redis.get(self.keys.webhook_checkpoint(partition))
        return text(value) if value else ORIGIN

    async def read_notices(self, partition: int, after: str, count: int) -> list[NoticeEntry]:
        raw: Any = await self.redis.xrange(self.keys.notices(partition), min=f"({after}", max="+", count=count)
        return [NoticeEntry(text(entry_id), text(fields[b"k"]), fields[b"a"]) for entry_id, fields in raw]

    async def enqueue(self, lease: str, partition: int, checkpoint: str, deliveries: Sequence[Delivery],
                      now_ms: int) -> bool:
        """Queue deliveries (one already known is left as it is) and advance the checkpoint, in one fenced step."""
        keys = [self.keys.webhook_lease(), self.keys.webhook_due(), self.keys.webhook_checkpoint(partition)]
        args: list[Any] = [lease, checkpoint, now_ms]
        for delivery in deliveries:
            keys += [self.keys.webhook_delivery(delivery.id),
                     self.keys.webhook_deliveries(delivery.tenant_id, delivery.environment_id)]
            args += [delivery.id, _delivery_encoder.encode(delivery), delivery.created_ms]
        return bool(await self.scripts.webhook_enqueue(keys=keys, args=args))

    async def due(self, now_ms: int, limit: int) -> list[Delivery]:
        """Up to `limit` queued deliveries whose time has come, earliest first (ids without a delivery are dropped)."""
        ids: Any = await self.redis.zrangebyscore(self.keys.webhook_due(), "-inf", now_ms, start=0, num=limit)
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw_id in ids:
                pipe.hget(self.keys.webhook_delivery(text(raw_id)), "d")
            found: list[Any] = await pipe.execute()
        missing = [raw_id for raw_id, raw in zip(ids, found, strict=True) if not raw]
        if missing:
            await self.redis.zrem(self.keys.webhook_due(), *missing)
        return [_delivery_decoder.decode(raw) for raw in found if raw]

    async def get(self, delivery_id_: str) -> Delivery | None:
        raw: Any = await self.redis.hget(self.keys.webhook_delivery(delivery_id_), "d")
        return _delivery_decoder.decode(raw) if raw else None

    async def claim(self, lease: str, due_ms: Mapping[str, int]) -> bool:
        """Move queued deliveries to new due times (a claim while attempted, a later turn); fenced."""
        args: list[Any] = [lease]
        for delivery_id_, at_ms in due_ms.items():
            args += [at_ms, delivery_id_]
        return bool(await self.scripts.webhook_claim(keys=[self.keys.webhook_lease(), self.keys.webhook_due()],
                                                     args=args))

    async def record(self, lease: str, delivery: Delivery, next_attempt_ms: int | None, now_ms: int) -> bool:
        """Save the delivery's state; reschedule it, or take it off the queue when delivered or dead (indexed as
        finished at `now_ms`, for retention); fenced."""
        keys = [self.keys.webhook_lease(), self.keys.webhook_due(), self.keys.webhook_delivery(delivery.id),
                self.keys.webhook_finished()]
        args = [lease, delivery.id, _delivery_encoder.encode(delivery),
                "" if next_attempt_ms is None else next_attempt_ms, now_ms]
        return bool(await self.scripts.webhook_record(keys=keys, args=args))

    async def deliveries(self, tenant_id: str, environment_id: str, limit: int, offset: int) -> list[Delivery]:
        ids: Any = await self.redis.zrevrange(self.keys.webhook_deliveries(tenant_id, environment_id),
                                              offset, offset + limit - 1)
        found = [await self.get(text(i)) for i in ids]
        return [d for d in found if d is not None]

    def lease(self, holder: str, ttl_ms: int) -> Lease:
        """The sender's fenced lease (store/lease.py), not taken yet."""
        return Lease(self.scripts.lease, self.scripts.release, self.keys.webhook_lease(), self.keys.webhook_fence(),
                     holder, ttl_ms)

    async def take_lease(self, holder: str, ttl_ms: int, held: str | None) -> str | None:
        """Take or renew the sender lease (a new holder gets a new fencing token); None when another holds it."""
        return await take(self.scripts.lease, self.keys.webhook_lease(), self.keys.webhook_fence(), holder, ttl_ms,
                          held)

    async def release_lease(self, held: str) -> None:
        await give_back(self.scripts.release, self.keys.webhook_lease(), held)

    async def lease_holder(self) -> str | None:
        value: Any = await self.redis.get(self.keys.webhook_lease())
        return text(value) if value else None
