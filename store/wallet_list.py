"""A tenant's wallets by creation time (what GET /v1/wallets and wallet search walk), the accounts that hold them,
and the read that answers from the snapshot when it is at most a given age behind the log (x-max-live).

The list entry of a wallet is written once its creation is appended, scored by its `created_at` in ms: the list
holds only wallets that exist, in the order of their creation. A crash of the API process between the append and
this one write leaves the wallet out of the list (it is still found by id); wallets created before the list existed
are not in it either."""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from domain.codec import decode_ref
from domain.identity import AccountRef
from store.eventstore import AccountRead, EventStore, account_read
from store.keys import Keys
from store.positions import text

READ_CONCURRENCY = 64  # accounts read at once when a page or a scan loads its wallets


def created_ms(created_at: datetime) -> int:
    return int(created_at.timestamp() * 1000)


class WalletList:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def add(self, ref: AccountRef, wallet_id: str, created_at: datetime) -> None:
        await self.redis.zadd(self.keys.wallets(ref.tenant_id, ref.environment_id),
                              {wallet_id: created_ms(created_at)})

    async def count(self, tenant_id: str, environment_id: str) -> int:
        total: int = await self.redis.zcard(self.keys.wallets(tenant_id, environment_id))
        return total

    async def page(self, tenant_id: str, environment_id: str, newest_first: bool, offset: int,
                   count: int) -> list[str]:
        """Wallet ids in creation order (ms, then id), or its reverse."""
        key, end = self.keys.wallets(tenant_id, environment_id), offset + count - 1
        raw: Any = await (self.redis.zrevrange(key, offset, end) if newest_first
                          else self.redis.zrange(key, offset, end))
        return [text(member) for member in raw]

    async def owners(self, wallet_ids: Sequence[str], tenant_id: str,
                     environment_id: str) -> dict[str, AccountRef]:
        """The account of each wallet the tenant holds (another tenant's wallet and a missing one are absent)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for wallet_id in wallet_ids:
                pipe.get(self.keys.wallet_index(wallet_id))
            replies: list[Any] = await pipe.execute()
        found = {wallet_id: decode_ref(raw) for wallet_id, raw in zip(wallet_ids, replies, strict=True) if raw}
        return {wallet_id: ref for wallet_id, ref in found.items()
                if (ref.tenant_id, ref.environment_id) == (tenant_id, environment_id)}


async def read_accounts(store: EventStore, refs: Sequence[AccountRef]) -> dict[AccountRef, AccountRead]:
    """Each account read exactly (snapshot and unfolded tail), READ_CONCURRENCY at a time."""
    distinct = list(dict.fromkeys(refs))
    reads: dict[AccountRef, AccountRead] = {}
    for start in range(0, len(distinct), READ_CONCURRENCY):
        chunk = distinct[start:start + READ_CONCURRENCY]
        reads.update(zip(chunk, await asyncio.gather(*(store.read_account(ref) for ref in chunk)), strict=True))
    return reads


async def read_within(store: EventStore, ref: AccountRef, max_age_ms: int) -> tuple[AccountRead, bool]:
    """The account from its snapshot alone when the snapshot is at most `max_age_ms` behind its log (see
    store/lua/read_within.lua), else exactly; and whether the snapshot alone answered. One round trip."""
    reply: Any = await store.scripts.read_within(
        keys=[store.keys.snapshot(ref), store.keys.log(ref), store.keys.rate_blobs(store.keys.partition_of(ref))],
        args=[max_age_ms],
    )
    return account_read(reply, store.rate_cards), bool(int(reply[6]))
