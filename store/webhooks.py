"""Webhook endpoints and deliveries in Redis: the queue a sender works through, with visible state."""

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from store.keys import Keys
from store.positions import ORIGIN, text

DeliveryStatus = Literal["pending", "delivered", "dead"]


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    url: str
    secret: str
    event_types: tuple[str, ...] = ()
    created_at: str = ""


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


class Notice(msgspec.Struct, frozen=True):
    """One entry of an alerts stream: its position, the key it was emitted under and its JSON payload."""

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
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def add_endpoint(self, tenant_id: str, environment_id: str, endpoint: Endpoint) -> None:
        await self.redis.hset(self.keys.webhook_endpoints(tenant_id, environment_id), endpoint.id,
                              _endpoint_encoder.encode(endpoint))

    async def endpoints(self, tenant_id: str, environment_id: str) -> list[Endpoint]:
        raw: Any = await self.redis.hvals(self.keys.webhook_endpoints(tenant_id, environment_id))
        return sorted((_endpoint_decoder.decode(v) for v in raw), key=lambda e: e.id)

    async def delete_endpoint(self, tenant_id: str, environment_id: str, endpoint_id: str) -> bool:
        return bool(await self.redis.hdel(self.keys.webhook_endpoints(tenant_id, environment_id), endpoint_id))

    async def checkpoint(self, partition: int) -> str:
        value: Any = await self.redis.get(self.keys.webhook_checkpoint(partition))
        return text(value) if value else ORIGIN

    async def read_notices(self, partition: int, after: str, count: int) -> list[Notice]:
        raw: Any = await self.redis.xrange(self.keys.alerts(partition), min=f"({after}", max="+", count=count)
        return [Notice(text(entry_id), text(fields[b"k"]), fields[b"a"]) for entry_id, fields in raw]

    async def enqueue(self, partition: int, checkpoint: str, deliveries: Sequence[Delivery], now_ms: int) -> None:
        """Queue deliveries (a delivery already known is left as it is) and advance the checkpoint, in one MULTI."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for delivery in deliveries:
                key = self.keys.webhook_delivery(delivery.id)
                pipe.hsetnx(key, "d", _delivery_encoder.encode(delivery))
                pipe.zadd(self.keys.webhook_due(), {delivery.id: now_ms}, nx=True)
                pipe.zadd(self.keys.webhook_deliveries(delivery.tenant_id, delivery.environment_id),
                          {delivery.id: delivery.created_ms}, nx=True)
            pipe.set(self.keys.webhook_checkpoint(partition), checkpoint)
            await pipe.execute()

    async def due(self, now_ms: int, limit: int) -> list[Delivery]:
        ids: Any = await self.redis.zrangebyscore(self.keys.webhook_due(), "-inf", now_ms, start=0, num=limit)
        deliveries = []
        for raw_id in ids:
            found = await self.get(text(raw_id))
            if found is None:
                await self.redis.zrem(self.keys.webhook_due(), raw_id)
            else:
                deliveries.append(found)
        return deliveries

    async def get(self, delivery_id_: str) -> Delivery | None:
        raw: Any = await self.redis.hget(self.keys.webhook_delivery(delivery_id_), "d")
        return _delivery_decoder.decode(raw) if raw else None

    async def record(self, delivery: Delivery, next_attempt_ms: int | None) -> None:
        """Save the delivery's state; reschedule it, or take it off the queue when delivered or dead."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.webhook_delivery(delivery.id), "d", _delivery_encoder.encode(delivery))
            if next_attempt_ms is None:
                pipe.zrem(self.keys.webhook_due(), delivery.id)
            else:
                pipe.zadd(self.keys.webhook_due(), {delivery.id: next_attempt_ms})
            await pipe.execute()

    async def deliveries(self, tenant_id: str, environment_id: str, limit: int, offset: int) -> list[Delivery]:
        ids: Any = await self.redis.zrevrange(self.keys.webhook_deliveries(tenant_id, environment_id),
                                              offset, offset + limit - 1)
        found = [await self.get(text(i)) for i in ids]
        return [d for d in found if d is not None]

    async def take_lease(self, holder: str, ttl_ms: int) -> bool:
        """One sender at a time: take or renew the sender lease."""
        key = self.keys.webhook_lease()
        if await self.redis.set(key, holder, nx=True, px=ttl_ms):
            return True
        current: Any = await self.redis.get(key)
        if current is not None and text(current) == holder:
            await self.redis.pexpire(key, ttl_ms)
            return True
        return False
