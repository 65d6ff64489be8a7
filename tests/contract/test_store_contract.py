"""The store's own promises on every backend: atomic appends with their dedup, optimistic appends, the account
index, fenced leases and the partition feed."""

from datetime import UTC, datetime
from decimal import Decimal

from redis.asyncio import Redis

from domain.events import CreditsGranted
from domain.identity import AccountRef
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from store.positions import ORIGIN
from store.projection import Projection

KEYS = Keys(4)
REF = AccountRef("tenant", "env", "cust_store")
AT = datetime(2026, 1, 1, tzinfo=UTC)


def grant(n: int) -> CreditsGranted:
    return CreditsGranted(id=f"ev-{n}", at=AT, wallet_id="w1", transaction_id=f"tx-{n}", credits=Decimal(n),
                          reason="FREE_CREDIT_GRANT")


async def test_appends_read_back_in_order_and_a_retried_key_appends_nothing(store_client: Redis) -> None:
    store = EventStore(store_client, KEYS, 3600)
    first = await store.append(REF, [grant(1), grant(2)], Dedup("top_up", "k-1", value="tx-1"))
    retry = await store.append(REF, [grant(1), grant(2)], Dedup("top_up", "k-1", value="tx-1"))
    bare = [(await store.append(REF, [grant(3)], Dedup("event", "e-3"))).status for _ in range(2)]
    log = await store.read_log(REF)
    assert (first.status, retry.status, bare) == ("appended", "duplicate", ["appended", "duplicate"])
    assert [event.transaction_id for _, event in log if isinstance(event, CreditsGranted)] == ["tx-1", "tx-2", "tx-3"]
    positions = [position for position, _ in log]
    assert positions == sorted(positions, key=lambda p: tuple(map(int, p.split("-")))) and len(set(positions)) == 3
    assert await store.last_position(REF) == positions[-1]
    assert await store.seen(REF, Dedup("top_up", "k-1", value="tx-1")) == f"tx-1|{first.positions[0]}"
    assert retry.seen == f"tx-1|{first.positions[0]}"
    assert await store.seen(REF, Dedup("top_up", "k-2", value="tx-9")) is None


async def test_an_append_expecting_an_older_end_is_refused(store_client: Redis) -> None:
    store = EventStore(store_client, KEYS, 3600)
    await store.append(REF, [grant(1)])
    end = await store.last_position(REF)
    await store.append(REF, [grant(2)])
    stale = await store.append(REF, [grant(3)], expect=end)
    assert stale.status == "conflict"
    assert len(await store.read_log(REF)) == 2


async def test_accounts_and_wallets_are_indexed(store_client: Redis) -> None:
    store = EventStore(store_client, KEYS, 3600)
    await store.append(REF, [grant(1)])
    await store.index_wallet("w1", REF)
    assert REF in await store.accounts(KEYS.partition_of(REF))
    assert await store.find_wallet("w1") == REF
    assert await store.find_wallet("w-none") is None


async def test_a_lease_is_fenced_renewed_by_its_holder_and_taken_over_only_when_released(store_client: Redis) -> None:
    projection = Projection(store_client, KEYS)
    held = await projection.take_lease(0, "a", 10_000, None)
    assert held is not None
    assert await projection.take_lease(0, "b", 10_000, None) is None
    assert await projection.take_lease(0, "a", 10_000, held) == held
    await projection.release_lease(0, held)
    successor = await projection.take_lease(0, "b", 10_000, None)
    assert successor is not None and successor != held
    assert await projection.take_lease(0, "a", 10_000, held) is None  # the old token is fenced out


async def test_the_partition_feed_names_each_append_once_in_order(store_client: Redis) -> None:
    store, projection = EventStore(store_client, KEYS, 3600), Projection(store_client, KEYS)
    partition = KEYS.partition_of(REF)
    for n in range(3):
        await store.append(REF, [grant(n + 1)])
    feed = await projection.read_feed(partition, ORIGIN, 10, None)
    assert [entry.ref for entry in feed] == [REF] * 3
    assert await projection.read_feed(partition, feed[-1].position, 10, None) == []
    assert await projection.checkpoint(partition) == ORIGIN
