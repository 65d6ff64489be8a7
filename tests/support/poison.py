"""Poison for one account: events whose fold raises, appended through the store (bypassing the API), and polling."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.codec import encode_event, encode_ref
from domain.events import AnyEvent, CreditsGranted
from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import text

GARBAGE = b"\xc1 not msgpack"


def same_partition(keys: Keys, count: int, tenant: str = "tenant_a", environment: str = "env_a",
                   prefix: str = "cust_q") -> list[AccountRef]:
    """`count` accounts that all hash to one partition (the partition of the first candidate)."""
    found: list[AccountRef] = []
    n = 0
    while len(found) < count:
        ref = AccountRef(tenant, environment, f"{prefix}{n:04d}")
        if not found or keys.partition_of(ref) == keys.partition_of(found[0]):
            found.append(ref)
        n += 1
    return found


def unfoldable_grant(wallet_id: str) -> CreditsGranted:
    """A well-formed event whose fold raises (a NaN amount of credits cannot be compared or added)."""
    tx = f"poison-{uuid.uuid4().hex[:8]}"
    return CreditsGranted(id=f"ev-{tx}", at=datetime.now(UTC), wallet_id=wallet_id, transaction_id=tx,
                          credits=Decimal("NaN"), reason="PURCHASED_CREDIT_DIRECT")


def grant(wallet_id: str, credits: str) -> CreditsGranted:
    tx = f"grant-{uuid.uuid4().hex[:8]}"
    return CreditsGranted(id=f"ev-{tx}", at=datetime.now(UTC), wallet_id=wallet_id, transaction_id=tx,
                          credits=Decimal(credits), reason="PURCHASED_CREDIT_DIRECT")


async def append_event(store: EventStore, ref: AccountRef, event: AnyEvent) -> tuple[str, bytes]:
    """Append one event through the store (no decide, no validation); returns its position and its bytes."""
    appended = await store.append(ref, [event])
    assert appended.status == "appended", appended
    return appended.positions[0], encode_event(event)


async def append_raw(store: EventStore, ref: AccountRef, payload: bytes = GARBAGE) -> str:
    """Raw bytes appended as an event by the store's own append script (customer stream and feed, one step)."""
    partition = store.keys.partition_of(ref)
    keys = [store.keys.log(ref), store.keys.feed(partition), store.keys.accounts(partition),
            store.keys.rate_pointers(partition, ref.tenant_id, ref.environment_id)]
    reply: Any = await store.scripts.append(keys=keys, args=[encode_ref(ref), 60, "", "", "", payload])
    return text(reply[1][0])


async def until(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 120.0) -> None:
    """Poll `probe` until it holds (no fixed sleep), or fail after `timeout` seconds saying `what` never held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await probe():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)
