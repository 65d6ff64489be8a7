"""GET /v1/customers/wallets on a real Redis: by id (internal id or account name) and by lookup key (external id),
real-time balances, and x-max-live: the snapshot when it is at most that far behind the log, else the exact read."""

import asyncio
from typing import Any

import httpx
from redis.asyncio import Redis

from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from store.wallet_list import read_within
from tests.support.harness import PARTITIONS, running_app, wait_folded

REF = AccountRef("tenant_a", "env_a", "acme-1")
PRICE = {"event_name": "api_call", "currency": "USD", "aggregation": {"type": "COUNT"},
         "billing_model": "FLAT_FEE", "amount": "2"}
RT_FIELDS = {"real_time_balance", "real_time_credit_balance", "current_period_usage", "is_cached_fallback"}


async def folded_customer(url: str, aredis: Redis) -> tuple[str, str]:
    """A customer (external id acme-1) with a 10-credit wallet, folded into its snapshot by the projector."""
    async with running_app(url) as client:
        customer = (await client.post("/v1/customers", json={"external_id": "acme-1"})).json()["id"]
        wallet = await client.post("/v1/wallets", json={"customer_id": customer, "currency": "USD",
                                                        "initial_credits_to_load": "10"})
        assert (await client.post("/v1/prices", json=PRICE)).status_code == 201
        await wait_folded(aredis, REF)
    return customer, wallet.json()["id"]


async def wallets(client: httpx.AsyncClient, headers: dict[str, str] | None = None,
                  **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/customers/wallets", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_by_id_by_lookup_key_and_by_account_name_with_real_time_balances(
    clean_redis: str, aredis: Redis
) -> None:
    customer, wallet = await folded_customer(clean_redis, aredis)
    async with running_app(clean_redis, projector=False) as client:
        assert (await client.post("/v1/events", json={"event_name": "api_call", "event_id": "u1",
                                                      "external_customer_id": "acme-1"})).status_code == 202
        by_id = await wallets(client, id=customer, include_real_time_balance="true")
        by_key = await wallets(client, lookup_key="acme-1", include_real_time_balance="true")
        by_name = await wallets(client, id="acme-1")
        balance = (await client.get(f"/v1/wallets/{wallet}/balance/real-time")).json()
        missing = await wallets(client, lookup_key="nobody")
        neither = await client.get("/v1/customers/wallets")
        both = await client.get("/v1/customers/wallets", params={"id": customer, "lookup_key": "acme-1"})
    assert by_id == by_key and [w["id"] for w in by_id] == [wallet]
    assert by_id[0]["real_time_credit_balance"] == "8" == balance["real_time_credit_balance"]  # usage in the tail
    assert (by_id[0]["credit_balance"], by_id[0]["balance"], balance["credit_balance"]) == ("8", "8", "10")
    assert by_id[0]["is_cached_fallback"] is False and by_id[0]["read_position"] == balance["read_position"]
    assert [w["id"] for w in by_name] == [wallet] and not RT_FIELDS & set(by_name[0])
    assert by_name[0]["credit_balance"] == "10"  # without real-time balances: the credits held
    assert missing == []
    assert neither.status_code == both.status_code == 400


async def test_x_max_live_serves_the_snapshot_when_fresh_enough_else_the_exact_read(
    clean_redis: str, aredis: Redis
) -> None:
    customer, wallet = await folded_customer(clean_redis, aredis)
    async with running_app(clean_redis, projector=False) as client:
        topped = await client.post(f"/v1/wallets/{wallet}/top-up", json={"credits_to_add": "5",
                                                                         "transaction_reason": "FREE_CREDIT_GRANT"})
        assert topped.status_code == 200, topped.text
        rt = {"id": customer, "include_real_time_balance": "true"}
        exact = await wallets(client, **rt)
        fresh = await wallets(client, {"x-max-live": "3600"}, **rt)
        fresh_sdk_form = await wallets(client, **rt, **{"-": "3600"})
        cached = await wallets(client, **rt, from_cache="true")
        disagree = await client.get("/v1/customers/wallets", params={**rt, "-": "0"},
                                    headers={"x-max-live": "3600"})
        stale = await _until_exact(client, rt)
    assert exact[0]["credit_balance"] == "15" and exact[0]["is_cached_fallback"] is False
    for answer in (fresh, fresh_sdk_form, cached):
        assert answer[0]["credit_balance"] == "10" and answer[0]["is_cached_fallback"] is True, answer
        assert answer[0]["read_position"] == answer[0]["folded_position"] != exact[0]["read_position"]
    assert stale[0]["credit_balance"] == "15" and stale[0]["is_cached_fallback"] is False
    assert disagree.status_code == 400


async def _until_exact(client: httpx.AsyncClient, params: dict[str, str]) -> list[dict[str, Any]]:
    """x-max-live: 0 answers exactly once the unfolded top-up is a millisecond old: poll for it, with a deadline."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        answer = await wallets(client, {"x-max-live": "0"}, **params)
        if not answer[0]["is_cached_fallback"] or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.001)


async def test_the_snapshot_answers_exactly_while_its_oldest_unfolded_entry_is_within_the_age(
    clean_redis: str, aredis: Redis
) -> None:
    _, wallet = await folded_customer(clean_redis, aredis)
    async with running_app(clean_redis, projector=False) as client:
        await client.post(f"/v1/wallets/{wallet}/top-up", json={"credits_to_add": "5",
                                                                "transaction_reason": "FREE_CREDIT_GRANT"})
        await client.post(f"/v1/wallets/{wallet}/top-up", json={"credits_to_add": "1",
                                                                "transaction_reason": "FREE_CREDIT_GRANT"})
    store = EventStore(aredis, Keys(PARTITIONS), dedup_ttl_seconds=3600)
    folded: Any = await aredis.hget(Keys(PARTITIONS).snapshot(REF), "p")
    oldest: Any = (await aredis.xrange(Keys(PARTITIONS).log(REF), f"({folded.decode()}", "+", count=1))[0][0]
    seconds, micros = await aredis.time()
    age = seconds * 1000 + micros // 1000 - int(oldest.decode().split("-")[0])  # only grows from here
    young, alone_young = await read_within(store, REF, age + 60_000)
    old, alone_old = await read_within(store, REF, age - 1)
    assert alone_young and young.tail == 0 and young.account.wallets[wallet].lots[-1].remaining == 10
    assert not alone_old and old.tail == 2  # the whole tail, not only the oldest entry
    assert sum(lot.remaining for lot in old.account.wallets[wallet].lots) == 16
