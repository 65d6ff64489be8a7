"""The webhook sender in-process for tests: notices written straight to a notices stream, the sender run as a task
with its own client (resolver injectable), and polling with a deadline for the state a test waits for."""

import asyncio
import inspect
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from domain.codec import encode_notice
from domain.notices import OngoingBalanceDropped
from projector.outbound import Resolver, system_resolve, webhook_client
from projector.webhooks import WebhookSender
from store.keys import Keys
from store.webhooks import Delivery, Endpoint, Webhooks
from tests.support.components import sender_settings

PARTITIONS = 4
SECRET = "whsec_" + "c2VuZGVyLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk="  # 29 bytes
FAST = {"poll_ms": 20, "backoff_base_ms": 50, "lease_ttl_ms": 2000}


async def add_notice(redis: Redis, tenant: tuple[str, str], key: str, partition: int = 0) -> str:
    """Append one alert notice (about wallet `key`) as the projector writes it (fields k and a); returns its
    position."""
    notice = OngoingBalanceDropped(
        tenant_id=tenant[0], environment_id=tenant[1], customer_id="cust", wallet_id=key, metric="ongoing_balance",
        old_state="ok", new_state="in_alarm", balance="0", threshold="1", position="1-0", at="2025-01-01T00:00:00Z",
    )
    entry: Any = await redis.xadd(Keys(PARTITIONS).notices(partition), {"k": key, "a": encode_notice(notice)})
    return str(entry.decode() if isinstance(entry, bytes) else entry)


async def add_endpoint(redis: Redis, tenant: tuple[str, str], endpoint_id: str, url: str) -> None:
    await Webhooks(redis, Keys(PARTITIONS)).add_endpoint(*tenant, Endpoint(id=endpoint_id, url=url, secret=SECRET))


async def deliveries(redis: Redis, tenant: tuple[str, str]) -> list[Delivery]:
    return await Webhooks(redis, Keys(PARTITIONS)).deliveries(*tenant, limit=500, offset=0)


async def wait_until(check: Callable[[], Awaitable[Any] | Any], timeout: float, what: str) -> Any:
    """Poll `check` (sync or async) until it gives something truthy; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        assert loop.time() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.01)


def sender(redis: Redis, holder: str = "sender-a", allow_private: bool = True, resolve: Resolver = system_resolve,
           tls: ssl.SSLContext | None = None, **settings: Any) -> WebhookSender:
    values: dict[str, Any] = {**FAST, **settings}
    client = webhook_client(allow_private, values.get("concurrency", 64), resolve, tls)
    return WebhookSender(Webhooks(redis, Keys(PARTITIONS)), sender_settings(holder, **values), client)


@asynccontextmanager
async def running(webhook_sender: WebhookSender) -> AsyncIterator[asyncio.Task[None]]:
    """Run the sender until the block ends, then stop it (SIGTERM's path) and close its client."""
    stop = asyncio.Event()
    task = asyncio.create_task(webhook_sender.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await webhook_sender.client.aclose()
