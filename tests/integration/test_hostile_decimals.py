"""Hostile decimals and integers on every route that takes one: a 400 naming the field, nothing appended, and a
neighbour customer of the same partition keeps folding (its cached balance catches up)."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from domain.bounds import COOLDOWN_MAX_SECONDS, PRIORITY_MAX
from domain.identity import AccountRef
from store.keys import Keys
from tests.support.harness import PARTITIONS, running_app, wait_folded
from tests.support.hostile import feed_appends

KEYS = Keys(PARTITIONS)
VICTIM = AccountRef("tenant_a", "env_a", "cust_victim")
ERROR_FIELDS = {"code", "message", "http_status_code", "details"}

# Members of the class "not an in-bounds decimal", as a JSON string or number.
BAD_DECIMALS: list[Any] = [
    1e28, "1e28", "1e999999999", "9e999999", "1e16", "1234567890123456", 10**15, 2**70, "0.1234567890123",
    "0.0000000000001", " 1", "1 ", "1_000", "\u0661", "\uff11", "+1", ".5", "5.", "NaN", "Infinity", "-Infinity",
    "1" * 1000, "1,5", "0x10",
]
# JSON numbers typed float (alert and auto top-up thresholds): the same bounds, through their repr.
BAD_NUMBERS: list[Any] = [1e300, 1e28, 1e16, 1.5e15, 0.1234567890123, 1e-13, "1"]
# Auto top-up amounts take decimal strings too (exact, like every other decimal): the same numbers, and bad strings.
BAD_TOPUP_NUMBERS: list[Any] = [*(n for n in BAD_NUMBERS if not isinstance(n, str)), *BAD_DECIMALS]
BAD_COOLDOWNS: list[Any] = [10**15, COOLDOWN_MAX_SECONDS + 1, -1, 2**70]
BAD_PRIORITIES: list[Any] = [2**70, PRIORITY_MAX + 1, -1]


def neighbour_of(ref: AccountRef) -> AccountRef:
    """Another customer of the same tenant hashed into the same partition."""
    partition = KEYS.partition_of(ref)
    return next(other for n in range(1000)
                if KEYS.partition_of(other := AccountRef(ref.tenant_id, ref.environment_id, f"neighbour_{n}"))
                == partition)


def nested(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`body` with value set at path "a.b" (inner objects copied, not shared)."""
    head, _, rest = path.partition(".")
    inner = body.get(head)
    return {**body, head: nested(dict(inner) if isinstance(inner, dict) else {}, rest, value) if rest else value}


class World:
    def __init__(self, client: httpx.AsyncClient, redis: Redis, wallet_id: str, neighbour_wallet: str) -> None:
        self.client, self.redis = client, redis
        self.wallet_id, self.neighbour_wallet = wallet_id, neighbour_wallet
        self.neighbour_credits = 1

    async def lengths(self) -> tuple[int, int, int]:
        prices = (await self.client.get("/v1/prices")).json()["items"]
        return (await self.redis.xlen(KEYS.log(VICTIM)), await feed_appends(self.redis, KEYS.partition_of(VICTIM)),
                len(prices))

    async def neighbour_keeps_folding(self, timeout: float = 120.0) -> None:
        """Top the neighbour up and poll its cached balance until the projector has folded it."""
        reply = await self.client.post(f"/v1/wallets/{self.neighbour_wallet}/top-up",
                                       json={"credits_to_add": "1", "transaction_reason": "FREE_CREDIT_GRANT"})
        assert reply.status_code == 200, reply.text
        self.neighbour_credits += 1
        url = f"/v1/wallets/{self.neighbour_wallet}/balance/real-time?from_cache=true"
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            body = (await self.client.get(url)).json()
            if body["is_cached_fallback"] and body["credit_balance"] == str(self.neighbour_credits):
                return
            assert asyncio.get_running_loop().time() < deadline, f"the neighbour did not catch up: {body}"
            await asyncio.sleep(0.01)


async def world(client: httpx.AsyncClient, redis: Redis) -> World:
    victim = await client.post("/v1/wallets", json={"customer_id": VICTIM.customer_id, "currency": "USD",
                                                    "initial_credits_to_load": "100"})
    neighbour = await client.post("/v1/wallets", json={"customer_id": neighbour_of(VICTIM).customer_id,
                                                       "currency": "USD", "initial_credits_to_load": "1"})
    assert victim.status_code == neighbour.status_code == 200, (victim.text, neighbour.text)
    return World(client, redis, victim.json()["id"], neighbour.json()["id"])


Send = Callable[[World, Any], Awaitable[httpx.Response]]


def top_up(field: str, **extra: Any) -> Send:
    async def send(w: World, value: Any) -> httpx.Response:
        body = {"transaction_reason": "PURCHASED_CREDIT_DIRECT", "credits_to_add": "1", **extra, field: value}
        return await w.client.post(f"/v1/wallets/{w.wallet_id}/top-up", json=body)
    return send


async def debit(w: World, value: Any) -> httpx.Response:
    return await w.client.post(f"/v1/wallets/{w.wallet_id}/debit", json={"credits": value})


def create_wallet(path: str, **extra: Any) -> Send:
    async def send(w: World, value: Any) -> httpx.Response:
        body = nested({"customer_id": VICTIM.customer_id, "currency": "EUR", **extra}, path, value)
        return await w.client.post("/v1/wallets", json=body)
    return send


def update_wallet(path: str, **extra: Any) -> Send:
    async def send(w: World, value: Any) -> httpx.Response:
        return await w.client.put(f"/v1/wallets/{w.wallet_id}", json=nested(extra, path, value))
    return send


def create_price(path: str, **extra: Any) -> Send:
    async def send(w: World, value: Any) -> httpx.Response:
        body = {"event_name": "api_call", "currency": "USD", "aggregation": {"type": "COUNT"},
                "billing_model": "FLAT_FEE", "amount": "1", **extra}
        if path.startswith("tiers."):
            tier = {"unit_amount": "1", path.removeprefix("tiers."): value}
            body["tiers"] = [tier, {"unit_amount": "1"}] if "up_to" in path else [{"unit_amount": "1", **tier}]
        else:
            body = nested(body, path, value)
        return await w.client.post("/v1/prices", json=body)
    return send


async def pay_invoice(w: World, value: Any) -> httpx.Response:
    return await w.client.post(f"/v1/customers/{VICTIM.customer_id}/invoices/inv_x/payments", json={"amount": value})


ALERTS = {"alert_enabled": True}
TOPUP = {"enabled": True, "threshold": 1, "amount": 5}
CASES: list[tuple[str, Send, list[Any]]] = [
    ("credits_to_add", top_up("credits_to_add"), [*BAD_DECIMALS, "0", "-1"]),
    ("amount", top_up("amount", credits_to_add=None), [*BAD_DECIMALS, "0"]),
    ("priority", top_up("priority"), BAD_PRIORITIES),
    ("credits", debit, [*BAD_DECIMALS, "0"]),
    ("initial_credits_to_load", create_wallet("initial_credits_to_load"), [*BAD_DECIMALS, "-1"]),
    ("conversion_rate", create_wallet("conversion_rate"), [*BAD_DECIMALS, "1e999999", 1e300, "0", 0, "-1"]),
    ("topup_conversion_rate", create_wallet("topup_conversion_rate"), [*BAD_DECIMALS, "1e999999", "0"]),
    ("alert_settings.critical.threshold", create_wallet("alert_settings.critical.threshold", alert_settings=ALERTS),
     BAD_NUMBERS),
    ("auto_topup.amount", create_wallet("auto_topup.amount", auto_topup=TOPUP), BAD_TOPUP_NUMBERS),
    ("auto_topup.cooldown_seconds", create_wallet("auto_topup.cooldown_seconds", auto_topup=TOPUP), BAD_COOLDOWNS),
    ("alert_settings.critical.threshold", update_wallet("alert_settings.critical.threshold"), BAD_NUMBERS),
    ("auto_topup.threshold", update_wallet("auto_topup.threshold", auto_topup=TOPUP), BAD_TOPUP_NUMBERS),
    ("auto_topup.amount", update_wallet("auto_topup.amount", auto_topup=TOPUP), BAD_TOPUP_NUMBERS),
    ("auto_topup.cooldown_seconds", update_wallet("auto_topup.cooldown_seconds", auto_topup=TOPUP), BAD_COOLDOWNS),
    ("amount", create_price("amount"), [*BAD_DECIMALS, "1e999999999"]),
    ("unit_amount", create_price("tiers.unit_amount", billing_model="TIERED"), BAD_DECIMALS),
    ("flat_amount", create_price("tiers.flat_amount", billing_model="TIERED"), BAD_DECIMALS),
    ("up_to", create_price("tiers.up_to", billing_model="TIERED"), BAD_DECIMALS),
    ("divide_by", create_price("transform_quantity.divide_by", billing_model="PACKAGE"),
     [*BAD_DECIMALS, "0", "-2"]),
    ("amount", pay_invoice, BAD_DECIMALS),
]


@pytest.mark.parametrize(("field", "send", "values"), CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
async def test_an_out_of_bounds_value_is_a_400_that_appends_nothing_and_stalls_no_neighbour(
    clean_redis: str, aredis: Redis, field: str, send: Send, values: list[Any],
) -> None:
    async with running_app(clean_redis) as client:
        w = await world(client, aredis)
        before = await w.lengths()
        for value in values:
            reply = await send(w, value)
            assert reply.status_code == 400, (field, value, reply.text)
            body = reply.json()
            assert set(body) == ERROR_FIELDS and body["code"] == "validation_error", body
            assert body["http_status_code"] == 400
            assert field.rsplit(".", 1)[-1] in json.dumps(body), (field, value, body)
            assert await w.lengths() == before, (field, value)
        await w.neighbour_keeps_folding()
        balance = (await client.get(f"/v1/wallets/{w.wallet_id}/balance/real-time")).json()
    assert balance["credit_balance"] == "100"


# Integers beyond 64 bits cannot be stored at all: bounding property values at ingestion is a separate change.
HOSTILE_QUANTITIES: list[Any] = ["9e999999", "1e999999999", "1" * 1000, 2**64 - 1, 2**63, -(2**63), 1e300, "NaN",
                                 "Infinity", "1e16", " 1_0 ", "1" * 200 + "e-190"]


async def test_usage_summing_a_value_that_is_no_in_bounds_number_is_unpriced_and_folds(
    clean_redis: str, aredis: Redis,
) -> None:
    """Accepted (or refused at the edge), never a fold failure: the account and its neighbour keep folding."""
    async with running_app(clean_redis) as client:
        w = await world(client, aredis)
        price = await client.post("/v1/prices", json={
            "event_name": "tokens_used", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
            "billing_model": "FLAT_FEE", "amount": "999999999999999"})
        assert price.status_code == 201, price.text
        statuses = [(await client.post("/v1/events", json={
            "event_name": "tokens_used", "external_customer_id": VICTIM.customer_id, "properties": {"tokens": value},
        })).status_code for value in HOSTILE_QUANTITIES]
        await wait_folded(aredis, VICTIM)
        await w.neighbour_keeps_folding()
        usage = (await client.get(f"/v1/customers/{VICTIM.customer_id}/usage")).json()
        cached = (await client.get(f"/v1/wallets/{w.wallet_id}/balance/real-time?from_cache=true")).json()
    assert set(statuses) <= {202, 400}, statuses
    accepted = statuses.count(202)
    assert usage["usage_events"] == accepted
    assert sum(p["unpriced_events"] for p in usage["periods"]) == accepted
    assert (cached["is_cached_fallback"], cached["current_period_usage"]) == (True, "0")
