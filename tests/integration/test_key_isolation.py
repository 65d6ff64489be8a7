"""Issue 8, High 2 on a real Redis: ids holding `:` cannot make one customer's keys land on another's.

Before keys were encoded, customer `x` posting event id `s14:snap` wrote its dedup marker at exactly the snapshot key
of customer `x:seen:event:s14` (WRONGTYPE when the projector wrote that snapshot: the partition stalled), and event id
`s14:seen:event:v-1` made that customer's own event `v-1` look like a duplicate (202, never counted).
"""

from typing import Any

from redis.asyncio import Redis

from domain.identity import AccountRef
from store.keys import Keys
from tests.support.harness import PARTITIONS, running_app, wait_folded

SUFFIX = ":seen:event:s14"


def attacker_and_victim() -> tuple[AccountRef, AccountRef]:
    """`x` (or `x1`, `x2`, ...) and `x...:seen:event:s14`, on one partition, where the old keys collided."""
    keys = Keys(PARTITIONS)
    for base in ["x", *(f"x{n}" for n in range(1, 100))]:
        attacker, victim = AccountRef("tenant_a", "env_a", base), AccountRef("tenant_a", "env_a", base + SUFFIX)
        if keys.partition_of(attacker) == keys.partition_of(victim):
            return attacker, victim
    raise AssertionError("no pair of customers on one partition")


async def usage(client: Any, ref: AccountRef, event_id: str, tokens: int) -> dict[str, Any]:
    reply = await client.post("/v1/events/bulk", json={"events": [{
        "event_name": "api_call", "external_customer_id": ref.customer_id, "event_id": event_id,
        "properties": {"tokens": tokens},
    }]})
    assert reply.status_code == 202, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def wallet_of(client: Any, ref: AccountRef) -> str:
    reply = await client.post("/v1/wallets", json={"customer_id": ref.customer_id, "currency": "USD",
                                                   "initial_credits_to_load": "100"})
    assert reply.status_code == 200, reply.text
    wallet_id: str = reply.json()["id"]
    return wallet_id


async def test_event_ids_holding_colons_touch_no_other_customers_keys(clean_redis: str, aredis: Redis) -> None:
    attacker, victim = attacker_and_victim()
    keys = Keys(PARTITIONS)
    old_account = f"tally:{{p{keys.partition_of(victim):03d}}}:tenant_a:env_a:"
    assert f"{old_account}{attacker.customer_id}:seen:event:s14:snap" == f"{old_account}{victim.customer_id}:snap"
    async with running_app(clean_redis) as client:
        price = await client.post("/v1/prices", json={
            "event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
            "billing_model": "FLAT_FEE", "amount": "0.5"})
        assert price.status_code == 201, price.text
        attacker_wallet = await wallet_of(client, attacker)
        stolen = [await usage(client, attacker, "s14:snap", 4), await usage(client, attacker, "s14:seen:event:v-1", 4)]
        victim_wallet = await wallet_of(client, victim)
        own = await usage(client, victim, "v-1", 20)
        await wait_folded(aredis, victim)  # the partition goes on folding: the snapshot is a hash, not a marker
        await wait_folded(aredis, attacker)
        cached = {ref: (await client.get(f"/v1/wallets/{wallet}/balance/real-time?from_cache=true")).json()
                  for ref, wallet in [(attacker, attacker_wallet), (victim, victim_wallet)]}
        usages = {ref: (await client.get(f"/v1/customers/{ref.customer_id}/usage")).json()
                  for ref in [attacker, victim]}
    assert [reply["duplicates"] for reply in [*stolen, own]] == ["0", "0", "0"]
    assert cached[attacker]["current_period_usage"] == "4" and cached[victim]["current_period_usage"] == "10"
    assert cached[attacker]["is_cached_fallback"] is True and cached[victim]["is_cached_fallback"] is True
    assert (usages[attacker]["usage_events"], usages[victim]["usage_events"]) == (2, 1)
    assert await aredis.type(keys.snapshot(victim)) == b"hash"
    assert await aredis.exists(*(keys.halted(p) for p in range(PARTITIONS))) == 0
