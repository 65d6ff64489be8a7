"""On a real Redis: a balance at the bound reads, debits and settles exactly; a command whose events cannot be
folded is a 400 and appends nothing; a top-up beyond the wallet bound is refused."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from redis.asyncio import Redis

from domain.events import CreditsGranted, WalletCreated
from domain.identity import AccountRef
from domain.settings import AutoTopup
from domain.watch import auto_topup_key
from store.eventstore import EventStore
from store.keys import Keys
from tests.support.harness import PARTITIONS, ManualClock, make_settings, running_app

KEYS = Keys(PARTITIONS)
BIG = "999999999999999.999999999999"  # 10^15 - 10^-12


async def ok(reply: httpx.Response) -> Any:
    assert reply.status_code in (200, 201, 202), reply.text
    return reply.json()


async def poll_transactions(client: httpx.AsyncClient, wallet_id: str, reason: str) -> list[Any]:
    deadline = asyncio.get_running_loop().time() + 120  # polled: marks a stall
    while True:
        items: list[Any] = (await ok(await client.get(f"/v1/wallets/{wallet_id}/transactions")))["items"]
        if any(item["transaction_reason"] == reason for item in items):
            return items
        assert asyncio.get_running_loop().time() < deadline, f"no {reason} transaction in time"
        await asyncio.sleep(0.05)


async def test_a_balance_at_the_bound_reads_debits_and_settles_exactly(clean_redis: str) -> None:
    settings = make_settings(period_grace_seconds=0, clock_interval_ms=50)
    now = datetime.now(UTC)
    # The app and the projector read one clock the test moves: 100 s back first, so the price it creates is in force
    # for a period that the test then ends by moving the clock on.
    clock = ManualClock(now - timedelta(seconds=100))
    async with running_app(clean_redis, settings=settings, clock=clock) as client:
        await ok(await client.post("/v1/prices", json={
            "event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
            "billing_model": "FLAT_FEE", "amount": BIG}))
        wallet = await ok(await client.post("/v1/wallets", json={
            "customer_id": "cust_big", "currency": "USD", "initial_credits_to_load": BIG, "conversion_rate": BIG}))
        url = f"/v1/wallets/{wallet['id']}"
        read = await ok(await client.get(f"{url}/balance/real-time"))
        assert (read["credit_balance"], read["real_time_credit_balance"]) == (BIG, BIG)
        assert read["balance"] == "999999999999999999999999998000.000000000000000000000001"
        debit = await ok(await client.post(f"{url}/debit", json={"credits": "0.000000000001"}))
        assert debit["wallet_transaction"]["credit_balance_after"] == "999999999999999.999999999998"
        # A one-minute period, ended once the clock moves on: the projector settles it at its next tick.
        await ok(await client.put("/v1/customers/cust_big/billing", json={
            "anchor": (now - timedelta(seconds=120)).isoformat(), "period": {"unit": "minute", "count": 1}}))
        await ok(await client.post("/v1/events", json={
            "event_name": "api_call", "external_customer_id": "cust_big", "properties": {"tokens": "0.000000000001"},
            "timestamp": (now - timedelta(seconds=90)).isoformat()}))
        clock.advance(timedelta(seconds=200))
        items = await poll_transactions(client, wallet["id"], "CREDIT_ADJUSTMENT")
        after = await ok(await client.get(f"{url}/balance/real-time"))
        invoices = await ok(await client.get("/v1/customers/cust_big/invoices"))
    # The charge is BIG * 1e-12 USD; at BIG USD per credit that is exactly 1e-12 credits.
    assert (items[0]["transaction_reason"], items[0]["credit_amount"]) == ("CREDIT_ADJUSTMENT", "0.000000000001")
    assert after["credit_balance"] == "999999999999999.999999999997"
    assert after["current_period_usage"] == after["unpaid_invoices_amount"] == "0"
    assert invoices["items"] == []


async def test_a_top_up_beyond_the_wallet_bound_is_refused(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet = await ok(await client.post("/v1/wallets", json={
            "customer_id": "cust_full", "currency": "USD", "initial_credits_to_load": BIG}))
        url = f"/v1/wallets/{wallet['id']}/top-up"
        over = await client.post(url, json={"credits_to_add": "0.000000000002",
                                            "transaction_reason": "PURCHASED_CREDIT_DIRECT"})
        up_to = await client.post(url, json={"credits_to_add": "0.000000000001",
                                             "transaction_reason": "PURCHASED_CREDIT_DIRECT"})
    assert over.status_code == 400 and over.json()["code"] == "validation_error"
    assert up_to.status_code == 200 and up_to.json()["wallet"]["credit_balance"] == "1000000000000000"


async def test_a_command_whose_events_cannot_be_folded_is_a_400_and_appends_nothing(
    clean_redis: str, aredis: Redis,
) -> None:
    """A wallet stored before the bounds existed (a cooldown of 10^15 s): the debit that would re-arm its auto
    top-up cannot be folded (the cooldown overflows), so it is refused before anything is appended."""
    ref = AccountRef("tenant_a", "env_a", "cust_legacy")
    at = datetime.now(UTC) - timedelta(minutes=5)
    topup = AutoTopup(enabled=True, threshold=Decimal(5), amount=Decimal(10), cooldown_seconds=10**15)
    history = [
        WalletCreated(id="e1", at=at, wallet_id="w_legacy", tenant_id=ref.tenant_id, environment_id=ref.environment_id,
                      customer_id=ref.customer_id, currency="usd", wallet_type="PRE_PAID",
                      conversion_rate=Decimal(1), topup_conversion_rate=Decimal(1), auto_topup=topup,
                      initial_credits=Decimal(1), initial_transaction_id="t1"),
    ]
    store = EventStore(aredis, KEYS, 3600)
    await store.index_wallet("w_legacy", ref)
    first = await store.append(ref, history)
    trigger = first.positions[0]  # the initial credits (1 <= 5) armed the auto top-up here
    await store.append(ref, [CreditsGranted(
        id="e2", at=at, wallet_id="w_legacy", transaction_id="t2", credits=Decimal(10),
        reason="PURCHASED_CREDIT_DIRECT", idempotency_key=auto_topup_key("w_legacy", trigger))])
    length = await aredis.xlen(KEYS.log(ref))
    async with running_app(clean_redis, projector=False) as client:
        refused = await client.post("/v1/wallets/w_legacy/debit", json={"credits": "8"})
        allowed = await client.post("/v1/wallets/w_legacy/debit", json={"credits": "1"})
    assert refused.status_code == 400 and refused.json()["code"] == "validation_error", refused.text
    assert allowed.status_code == 200, allowed.text
    assert await aredis.xlen(KEYS.log(ref)) == length + 1
