"""Waiting for the projector to catch up (polling positions with a deadline) and comparing reads of an account."""

import asyncio
from datetime import datetime
from typing import Any

import msgspec

from domain.balance import view_balance
from domain.codec import encode_account
from domain.identity import AccountRef
from domain.state import Account
from store.eventstore import EventStore
from store.positions import ORIGIN, is_after
from store.projection import Projection


async def every_account(store: EventStore) -> list[AccountRef]:
    refs: list[AccountRef] = []
    for partition in range(store.keys.partitions):
        refs.extend(await store.accounts(partition))
    return refs


async def lag(store: EventStore, projection: Projection) -> list[str]:
    """What the projector has not folded yet: partitions whose checkpoint is short of the feed head, and
    accounts whose snapshot is short of the stream head. Empty when it has caught up."""
    behind: list[str] = []
    for partition in range(store.keys.partitions):
        head, checkpoint = await projection.feed_head(partition), await projection.checkpoint(partition)
        if is_after(head, checkpoint):
            behind.append(f"partition {partition}: checkpoint {checkpoint} < feed head {head}")
    refs = await every_account(store)
    snapshots = await projection.load_snapshots(refs)
    for ref, snapshot in zip(refs, snapshots, strict=True):
        last: Any = await store.redis.xrevrange(store.keys.log(ref), count=1)
        head = last[0][0].decode() if last else ORIGIN
        if is_after(head, snapshot.position):
            behind.append(f"{ref}: snapshot {snapshot.position} < stream head {head}")
    return behind


async def wait_caught_up(store: EventStore, projection: Projection, timeout: float = 120.0) -> None:
    """Poll until every partition checkpoint and every snapshot has reached the head of its stream."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        behind = await lag(store, projection)
        if not behind:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"projector did not catch up in {timeout}s: {behind[:5]}")
        await asyncio.sleep(0.01)


def field_differences(left: Account, right: Account) -> list[str]:
    """Account fields (and each wallet's fields) where two accounts differ, compared as values."""
    diffs = [name for name in Account.__struct_fields__
             if name != "wallets" and getattr(left, name) != getattr(right, name)]
    for wallet_id in sorted(set(left.wallets) | set(right.wallets)):
        a, b = left.wallets.get(wallet_id), right.wallets.get(wallet_id)
        if a is None or b is None:
            diffs.append(f"wallets.{wallet_id} (missing on one side)")
            continue
        diffs.extend(f"wallets.{wallet_id}.{name}" for name in a.__struct_fields__
                     if getattr(a, name) != getattr(b, name))
    return diffs


def assert_same_account(reads: dict[str, Account], now: datetime) -> None:
    """Every read is the same Account, field by field and byte for byte, with the same balances at `now`."""
    (first_name, first), *others = reads.items()
    for name, other in others:
        assert field_differences(first, other) == [], f"{first_name} vs {name}"
        assert encode_account(first) == encode_account(other), f"{first_name} vs {name}: encodings differ"
        for wallet_id, wallet in first.wallets.items():
            expected = msgspec.to_builtins(view_balance(first, wallet, now))
            got = msgspec.to_builtins(view_balance(other, other.wallets[wallet_id], now))
            assert got == expected, f"balance of {wallet_id}: {first_name} vs {name}"
