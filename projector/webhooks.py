"""The webhook sender: turns alerts-stream entries into signed deliveries, at least once, with backoff.

Signatures follow the Standard Webhooks convention: `webhook-id` (stable per notice and endpoint),
`webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the key
being the base64 part of the endpoint's `whsec_…` secret.
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import random
import time
from typing import Any

import httpx
import msgspec

from projector.metrics import WEBHOOKS
from store.webhooks import Delivery, Endpoint, Webhooks, delivery_id

log = logging.getLogger("tally.webhooks")
_payload_fields = msgspec.json.Decoder(dict[str, Any])


class SenderSettings(msgspec.Struct, frozen=True, kw_only=True):
    holder: str
    max_attempts: int = 8
    backoff_base_ms: int = 1000
    backoff_max_ms: int = 600_000
    timeout_ms: int = 5000
    poll_ms: int = 200
    batch: int = 500


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff_ms(attempts: int, base_ms: int, max_ms: int, jitter: float) -> int:
    """Exponential in the attempts made, capped, scaled by a jitter factor in [0.5, 1]."""
    return int(min(max_ms, base_ms * 2 ** max(0, attempts - 1)) * jitter)


class WebhookSender:
    def __init__(self, webhooks: Webhooks, settings: SenderSettings, client: httpx.AsyncClient) -> None:
        self.webhooks = webhooks
        self.settings = settings
        self.client = client
        self.partitions = webhooks.keys.partitions

    async def queue_new(self) -> int:
        """Create a delivery per (notice, matching endpoint) for every notice after each partition's checkpoint."""
        queued = 0
        now_ms = int(time.time() * 1000)
        for partition in range(self.partitions):
            checkpoint = await self.webhooks.checkpoint(partition)
            notices = await self.webhooks.read_notices(partition, checkpoint, self.settings.batch)
            if not notices:
                continue
            deliveries: list[Delivery] = []
            endpoints: dict[tuple[str, str], list[Endpoint]] = {}
            for notice in notices:
                fields = _payload_fields.decode(notice.payload)
                tenant = (str(fields["tenant_id"]), str(fields["environment_id"]))
                if tenant not in endpoints:
                    endpoints[tenant] = await self.webhooks.endpoints(*tenant)
                event_type = str(fields["event_type"])
                for endpoint in endpoints[tenant]:
                    if endpoint.event_types and event_type not in endpoint.event_types:
                        continue
                    deliveries.append(Delivery(
                        id=delivery_id(notice.key, endpoint.id), endpoint_id=endpoint.id, tenant_id=tenant[0],
                        environment_id=tenant[1], event_type=event_type, payload=notice.payload.decode(),
                        created_ms=now_ms,
                    ))
            await self.webhooks.enqueue(partition, notices[-1].position, deliveries, now_ms)
            queued += len(deliveries)
        return queued

    async def send_due(self) -> int:
        now_ms = int(time.time() * 1000)
        due = await self.webhooks.due(now_ms, 100)
        await asyncio.gather(*(self.attempt(d) for d in due))
        return len(due)

    async def attempt(self, delivery: Delivery) -> None:
        endpoint = next((e for e in await self.webhooks.endpoints(delivery.tenant_id, delivery.environment_id)
                         if e.id == delivery.endpoint_id), None)
        delivery.attempts += 1
        if endpoint is None:
            delivery.status, delivery.last_error = "dead", "endpoint was deleted"
            await self.webhooks.record(delivery, None)
            return
        body = delivery.payload.encode()
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": delivery.id,
                   "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(endpoint.secret, delivery.id, timestamp, body)}
        try:
            reply = await self.client.post(endpoint.url, content=body, headers=headers,
                                           timeout=self.settings.timeout_ms / 1000)
            delivery.last_status, delivery.last_error = reply.status_code, ""
            ok = 200 <= reply.status_code < 300
        except httpx.HTTPError as exc:
            delivery.last_status, delivery.last_error, ok = 0, f"{type(exc).__name__}: {exc}", False
        WEBHOOKS.labels("ok" if ok else "failed").inc()
        if ok:
            delivery.status, delivery.delivered_ms = "delivered", int(time.time() * 1000)
            await self.webhooks.record(delivery, None)
        elif delivery.attempts >= self.settings.max_attempts:
            delivery.status = "dead"
            log.warning("webhook dead-lettered id=%s endpoint=%s attempts=%d", delivery.id, endpoint.id,
                        delivery.attempts)
            await self.webhooks.record(delivery, None)
        else:
            wait = backoff_ms(delivery.attempts, self.settings.backoff_base_ms, self.settings.backoff_max_ms,
                              random.uniform(0.5, 1.0))
            await self.webhooks.record(delivery, int(time.time() * 1000) + wait)

    async def run(self, stop: asyncio.Event) -> None:
        lease_ttl = max(5000, self.settings.poll_ms * 10)
        while not stop.is_set():
            if await self.webhooks.take_lease(self.settings.holder, lease_ttl):
                queued = await self.queue_new()
                sent = await self.send_due()
                if queued or sent:
                    log.info("webhooks queued=%d attempted=%d", queued, sent)
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.poll_ms / 1000)
