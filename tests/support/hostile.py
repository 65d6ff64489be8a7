"""Checks for hostile requests: a refusal has the ErrorResponse shape and writes nothing, a neighbour folds on."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain.identity import AccountRef
from store.keys import Keys
from tests.support.harness import API_KEY, PARTITIONS, PRINCIPALS, running_app, wait_folded

ERROR_FIELDS = {"code", "message", "http_status_code", "details"}
TENANT = PRINCIPALS[API_KEY]
HOSTILE = "cust_hostile"
CATCH_UP_SECONDS = 1.0  # the bound: a neighbour's cached balance catches up within a second (polled)
KEYS = Keys(PARTITIONS)
HOUSEKEEPING = frozenset(
    [KEYS.lease(p).encode() for p in range(PARTITIONS)] + [KEYS.fence(p).encode() for p in range(PARTITIONS)]
    + [k.encode() for k in (KEYS.projectors(), KEYS.webhook_lease(), KEYS.webhook_fence())]
)
"""Keys the projector beside the API writes on its own, request or not: leases with a TTL (on a loaded machine one
lapses and is taken again at any moment), their fencing counters, the membership heartbeat. No request writes them,
so leaving them out of the key set hides no write a refused request could make."""


def ref_of(customer: str) -> AccountRef:
    return AccountRef(TENANT.tenant_id, TENANT.environment_id, customer)


def neighbour_of(customer: str) -> str:
    """Another customer of the same tenant hashed into the same partition."""
    partition = KEYS.partition_of(ref_of(customer))
    return next(name for name in (f"cust_neighbour_{i}" for i in range(10_000))
                if KEYS.partition_of(ref_of(name)) == partition)


def assert_refused(case: str, response: httpx.Response, status: int = 400, code: str = "validation_error") -> None:
    assert response.status_code == status, f"{case}: {response.status_code} {response.text[:300]}"
    body = response.json()
    assert set(body) == ERROR_FIELDS, f"{case}: {body}"
    assert (body["code"], body["http_status_code"]) == (code, status), f"{case}: {body}"
    assert isinstance(body["message"], str) and isinstance(body["details"], dict), f"{case}: {body}"


class StoreMark(msgspec.Struct, frozen=True):
    """What a refused request must leave unchanged: every feed's length, the hostile customer's and its
    neighbour's stream lengths, and the set of keys (no dedup marker, no wallet index, no new stream) but the
    projector's HOUSEKEEPING."""

    feeds: tuple[int, ...]
    logs: tuple[int, ...]
    keys: frozenset[bytes]


async def feed_appends(redis: Redis, partition: int) -> int:
    """Entries ever appended to the partition's feed (XINFO's entries-added): retention trims the feed, so its
    length can shrink meanwhile; this count never does."""
    try:
        info: Any = await redis.xinfo_stream(KEYS.feed(partition))
    except ResponseError:  # no feed yet
        return 0
    return int(info["entries-added"])


async def mark(redis: Redis) -> StoreMark:
    feeds = tuple([await feed_appends(redis, p) for p in range(PARTITIONS)])
    logs = tuple([int(await redis.xlen(KEYS.log(ref_of(c)))) for c in (HOSTILE, neighbour_of(HOSTILE))])
    keys = frozenset([k async for k in redis.scan_iter(count=1000)]) - HOUSEKEEPING
    return StoreMark(feeds=feeds, logs=logs, keys=keys)


async def create_wallet(client: httpx.AsyncClient, customer: str, **body: Any) -> str:
    response = await client.post("/v1/wallets", json={"customer_id": customer, "currency": "USD", **body})
    assert response.status_code == 200, response.text
    wallet_id: str = response.json()["id"]
    return wallet_id


class Stage(msgspec.Struct):
    client: httpx.AsyncClient
    redis: Redis
    wallet_id: str  # the hostile customer's wallet
    neighbour_wallet_id: str
    before: StoreMark | None = None

    async def settle(self) -> None:
        """Wait until both customers are folded, then remember the store as it is."""
        await wait_folded(self.redis, ref_of(HOSTILE), PARTITIONS)
        await wait_folded(self.redis, ref_of(neighbour_of(HOSTILE)), PARTITIONS)
        self.before = await mark(self.redis)

    async def assert_nothing_written(self) -> None:
        after = await mark(self.redis)
        assert self.before is not None
        assert after.feeds == self.before.feeds, "a refused request appended to a feed"
        assert after.logs == self.before.logs, "a refused request appended to a customer stream"
        assert after.keys == self.before.keys, f"a refused request wrote keys: {after.keys ^ self.before.keys}"

    async def assert_neighbour_folds(self) -> None:
        """A top-up of the neighbour shows in its cached balance within CATCH_UP_SECONDS (polled)."""
        url = f"/v1/wallets/{self.neighbour_wallet_id}"
        before = (await self.client.get(f"{url}/balance/real-time")).json()["credit_balance"]
        top_up = await self.client.post(f"{url}/top-up", json={"credits_to_add": "1",
                                                                "transaction_reason": "FREE_CREDIT_GRANT"})
        assert top_up.status_code == 200, top_up.text
        expected = str(int(before) + 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CATCH_UP_SECONDS
        while True:
            cached = (await self.client.get(f"{url}/balance/real-time?from_cache=true")).json()
            if cached["is_cached_fallback"] and cached["credit_balance"] == expected:
                return
            assert loop.time() < deadline, f"the neighbour's cached balance did not catch up: {cached}"
            await asyncio.sleep(0.005)


@asynccontextmanager
async def staged(redis_url: str, redis: Redis, fast_path: bool = True) -> AsyncIterator[Stage]:
    """The app with its projector, a hostile customer's wallet and a neighbour's in the same partition, settled."""
    async with running_app(redis_url, fast_path=fast_path) as client:
        wallet_id = await create_wallet(client, HOSTILE, initial_credits_to_load="10")
        neighbour = await create_wallet(client, neighbour_of(HOSTILE), initial_credits_to_load="10")
        stage = Stage(client=client, redis=redis, wallet_id=wallet_id, neighbour_wallet_id=neighbour)
        await stage.settle()
        yield stage
