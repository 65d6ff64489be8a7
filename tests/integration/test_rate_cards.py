"""Rate cards are an object each store owns: a projector that never saw a usage entry's rate card in this process
loads it and folds the entry; a rate card that is not in the store is a clear error for that account alone."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.codec import decode_account
from domain.identity import AccountRef
from domain.usage import pending_charges
from projector.clock import PartitionClock
from projector.worker import PartitionWorker
from store.entries import decode_entry
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import is_after
from store.projection import Projection
from store.quarantine import Quarantines
from store.ratecard import MissingRateCard, RateCards
from tests.integration.test_usage_api import wallet_with_price
from tests.support.components import projector_settings
from tests.support.harness import PARTITIONS, running_app

KEYS = Keys(PARTITIONS)
REF = AccountRef("tenant_a", "env_a", "cust_rc")


async def usage_written(redis_url: str) -> None:
    """A priced usage event in REF's stream and feed, folded by nobody yet (the API runs without a projector)."""
    async with running_app(redis_url, projector=False) as client:
        await wallet_with_price(client, REF.customer_id)
        reply = await client.post("/v1/events", json={
            "event_name": "api_call", "external_customer_id": REF.customer_id, "properties": {"tokens": "10"}})
        assert reply.status_code == 202, reply.text


async def fold_with_a_fresh_projector(redis: Redis) -> Projection:
    """A projection (and rate cards) created now, as in a projector process that just started: fold to the head."""
    projection = Projection(redis, KEYS)
    settings = projector_settings("fresh")
    partition = KEYS.partition_of(REF)
    worker = PartitionWorker(partition, projection, settings,
                             PartitionClock(EventStore(redis, KEYS, 3600), projection, timedelta(hours=1)))
    await worker.keep_lease(True)
    for _ in range(50):
        await worker.step()
        if not is_after(await projection.feed_head(partition), await projection.checkpoint(partition)):
            break
    assert worker.halted is None, worker.halted
    return projection


async def test_a_rate_card_never_loaded_in_this_process_is_loaded_and_the_usage_folds(
    clean_redis: str, aredis: Redis,
) -> None:
    await usage_written(clean_redis)
    projection = await fold_with_a_fresh_projector(aredis)
    snapshot = (await projection.load_snapshots([REF]))[0]
    assert snapshot.quarantined is None
    assert snapshot.state is not None
    account = decode_account(snapshot.state)
    assert account.applied == 2  # the wallet (created with its credits) and the usage, priced by the rate card
    (wallet,) = account.wallets.values()
    assert pending_charges(account, wallet.currency) == Decimal(5)  # 10 tokens at 0.5
    assert await Quarantines(aredis, KEYS).get(REF) is None


async def test_a_rate_card_missing_from_the_store_quarantines_its_account_with_a_clear_reason(
    clean_redis: str, aredis: Redis,
) -> None:
    await usage_written(clean_redis)
    partition = KEYS.partition_of(REF)
    digests: Any = await aredis.hkeys(KEYS.rate_blobs(partition))
    assert len(digests) == 1
    await aredis.hdel(KEYS.rate_blobs(partition), digests[0])
    await fold_with_a_fresh_projector(aredis)  # the partition goes on (no halt): only the account stops
    letter = await Quarantines(aredis, KEYS).get(REF)
    assert letter is not None
    assert f"rate card {digests[0].hex()} is not in the store" in letter.reason


async def test_decoding_before_loading_names_the_rate_card_and_the_missing_load(
    clean_redis: str, aredis: Redis,
) -> None:
    await usage_written(clean_redis)
    store = EventStore(aredis, KEYS, 3600)
    entries = await store.read_raw_log(REF)  # loads what the entries name into store.rate_cards
    usage = next(e for e in entries if e.rates is not None)
    fresh = RateCards(aredis, KEYS)
    with pytest.raises(MissingRateCard, match=f"rate card {usage.rates.hex()} was not loaded"):
        decode_entry(usage.payload, usage.rates, fresh)
    await fresh.load(KEYS.partition_of(REF), [usage.rates])
    assert decode_entry(usage.payload, usage.rates, fresh) == decode_entry(usage.payload, usage.rates,
                                                                           store.rate_cards)
