"""Exactly once under producer retries: every usage event posted twice (alone and inside a bulk, interleaved at
random by concurrent clients, to one API process or to two sharing the port) charges exactly what posting it once
charges, and the projection equals the log."""

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from domain.events import UsageRecorded
from domain.identity import AccountRef
from domain.money import canonical, divide, to_wire
from store.connect import connect
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from store.verify import verify_all
from tests.support.catchup import wait_caught_up
from tests.support.harness import API_KEY as HARNESS_KEY
from tests.support.harness import PARTITIONS as APP_PARTITIONS
from tests.support.harness import PRINCIPALS, running_app, wait_folded
from tests.support.loopback import LoopbackClient
from tests.support.split_processes import API_KEY, ENVIRONMENT, PARTITIONS, TENANT, SplitProcesses, split_processes

SEED = 20_260_101
EVENTS = 10_000
CUSTOMERS = [f"cust_{n:02d}" for n in range(20)]
CLIENTS = 8
MAX_BATCH = 1000
INGEST_TIMEOUT = 150.0
CATCH_UP_TIMEOUT = 60.0
RATES = ["1", "2", "0.5", "4", "1.25"]
CREDITS = {"usd": Decimal(100), "eur": Decimal(10)}
FIGURES = ("credit_balance", "balance", "current_period_usage", "unpaid_invoices_amount", "real_time_balance",
           "real_time_credit_balance")

PRICES: list[dict[str, Any]] = [
    {"lookup_key": "tokens-flat", "event_name": "llm_call", "currency": "USD",
     "aggregation": {"type": "SUM", "field": "tokens"}, "billing_model": "FLAT_FEE", "amount": "0.0002"},
    {"lookup_key": "tokens-tiered", "event_name": "llm_call", "currency": "USD",
     "aggregation": {"type": "SUM", "field": "tokens"}, "billing_model": "TIERED", "tier_mode": "SLAB",
     "tiers": [{"up_to": "10000", "unit_amount": "0.0001"},
               {"up_to": "50000", "unit_amount": "0.00005", "flat_amount": "0.5"},
               {"unit_amount": "0.00001"}]},
    {"lookup_key": "calls-package", "event_name": "api_request", "currency": "USD", "aggregation": {"type": "COUNT"},
     "billing_model": "PACKAGE", "amount": "0.3", "transform_quantity": {"divide_by": "50", "round": "up"}},
    {"lookup_key": "eu-calls", "event_name": "api_request", "currency": "EUR", "aggregation": {"type": "COUNT"},
     "billing_model": "FLAT_FEE", "amount": "0.002", "filters": {"region": ["eu"]}},
]

CURRENCY_OF = {price["lookup_key"]: price["currency"].lower() for price in PRICES}


def tiered(tokens: Decimal) -> Decimal:
    """tokens-tiered by hand: 0.0001 up to 10,000; then 0.00005 up to 50,000 plus 0.5 on entering; then 0.00001."""
    total = min(tokens, Decimal(10_000)) * Decimal("0.0001")
    if tokens > 10_000:
        total += (min(tokens, Decimal(50_000)) - 10_000) * Decimal("0.00005") + Decimal("0.5")
    if tokens > 50_000:
        total += (tokens - 50_000) * Decimal("0.00001")
    return total


@dataclass
class Expected:
    """One customer's usage as if each event had been posted once, priced by hand."""

    events: int = 0
    unpriced: int = 0
    tokens: Decimal = Decimal(0)
    token_events: int = 0
    calls: int = 0
    eu_calls: int = 0

    def lines(self) -> dict[str, tuple[str, str, int]]:
        """lookup_key -> (quantity, amount, events), for the prices that saw at least one event."""
        packages = (Decimal(self.calls) / 50).to_integral_value(rounding=ROUND_CEILING)
        lines = {"tokens-flat": (self.tokens, self.tokens * Decimal("0.0002"), self.token_events),
                 "tokens-tiered": (self.tokens, tiered(self.tokens), self.token_events),
                 "calls-package": (Decimal(self.calls), packages * Decimal("0.3"), self.calls),
                 "eu-calls": (Decimal(self.eu_calls), self.eu_calls * Decimal("0.002"), self.eu_calls)}
        return {key: (to_wire(q), to_wire(a), n) for key, (q, a, n) in lines.items() if n}

    def totals(self) -> dict[str, Decimal]:
        """Charges per currency, for the currencies of the prices that saw events."""
        totals: dict[str, Decimal] = {}
        for key, (_, amount, _) in self.lines().items():
            totals[CURRENCY_OF[key]] = totals.get(CURRENCY_OF[key], Decimal(0)) + Decimal(amount)
        return totals


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token_amount(rng: random.Random) -> tuple[int | float | str, Decimal]:
    """A numeric property as producers send them: an integer, a decimal string, or a float with an exact repr."""
    kind = rng.random()
    if kind < 0.5:
        whole = rng.randint(1, 400)
        return whole, Decimal(whole)
    if kind < 0.9:
        text = f"{rng.randint(0, 400)}.{rng.randint(0, 99):02d}"
        return text, Decimal(text)
    exact = rng.choice([0.5, 2.25, 7.125])
    return exact, Decimal(str(exact))


def usage_events(rng: random.Random, start: datetime) -> tuple[list[dict[str, Any]], dict[str, Expected]]:
    """EVENTS usage events with explicit ids over CUSTOMERS, timestamped in the minute after `start` (a few left
    to the server's clock), and what each customer owes for them."""
    expected = {customer: Expected() for customer in CUSTOMERS}
    events = []
    for n in range(EVENTS):
        customer = rng.choice(CUSTOMERS)
        owed = expected[customer]
        owed.events += 1
        body: dict[str, Any] = {"event_id": f"evt_{n:05d}", "external_customer_id": customer, "source": "producer"}
        roll = rng.random()
        if roll < 0.55:
            wire, tokens = token_amount(rng)
            body.update(event_name="llm_call", properties={"tokens": wire, "model": rng.choice(["s", "m", "l"])})
            owed.tokens += tokens
            owed.token_events += 1
        elif roll < 0.60:
            body.update(event_name="llm_call", properties={"model": "s"})  # no tokens: no SUM price applies
            owed.unpriced += 1
        elif roll < 0.95:
            region = rng.choice(["eu", "us", "ap"])
            body.update(event_name="api_request", properties={"region": region})
            owed.calls += 1
            owed.eu_calls += region == "eu"
        else:
            body.update(event_name="unmetered", properties={"bytes": rng.randint(1, 10)})
            owed.unpriced += 1
        if rng.random() < 0.95:
            body["timestamp"] = rfc3339(start + timedelta(milliseconds=rng.randint(1, 60_000)))
        events.append(body)
    return events, expected


@dataclass(frozen=True)
class Post:
    path: str
    body: bytes
    event_ids: list[str]


def interleaved_posts(rng: random.Random, events: list[dict[str, Any]]) -> tuple[list[Post], int]:
    """Each event once alone and once in a bulk of random size (some bulks carry one event twice), shuffled
    together; returns the posts and how many in-bulk repeats they hold."""
    posts = [Post("/v1/events", msgspec.json.encode(event), [event["event_id"]]) for event in events]
    shuffled = rng.sample(events, len(events))
    repeats = start = 0
    while start < len(shuffled):
        batch = shuffled[start:start + rng.randint(1, MAX_BATCH)]
        start += len(batch)
        if len(batch) < MAX_BATCH and rng.random() < 0.3:
            batch = [*batch, rng.choice(batch)]
            repeats += 1
        posts.append(Post("/v1/events/bulk", msgspec.json.encode({"events": batch}), [e["event_id"] for e in batch]))
    rng.shuffle(posts)
    return posts, repeats


async def post_concurrently(processes: SplitProcesses, posts: list[Post]) -> int:
    """CLIENTS connections drain one shared list of posts; every answer must be a 202 naming the events.
    Returns the duplicates the bulk answers reported."""
    pending = iter(posts)
    duplicates = 0

    async def client() -> None:
        nonlocal duplicates
        async with LoopbackClient(processes.host, processes.port, {"x-api-key": API_KEY}) as connection:
            for post in pending:
                status, data = await connection.post(post.path, post.body)
                assert status == 202, f"{post.path} answered {status}: {data[:300]!r}"
                reply = msgspec.json.decode(data)
                if post.path == "/v1/events":
                    assert reply == {"message": "Event accepted for processing", "event_id": post.event_ids[0]}
                else:
                    assert reply["accepted"] == str(len(post.event_ids))
                    duplicates += int(reply["duplicates"])

    async with asyncio.timeout(INGEST_TIMEOUT), asyncio.TaskGroup() as group:
        for _ in range(CLIENTS):
            group.create_task(client())
    return duplicates


async def setup_accounts(client: httpx.AsyncClient, anchor: datetime) -> dict[str, tuple[str, str, str]]:
    """The rate card, a daily billing cycle from `anchor` and wallets: wallet id -> (customer, currency, rate)."""
    for price in PRICES:
        created = await client.post("/v1/prices", json=price)
        assert created.status_code == 201, created.text
    wallets: dict[str, tuple[str, str, str]] = {}
    for index, customer in enumerate(CUSTOMERS):
        billing = await client.put(f"/v1/customers/{customer}/billing",
                                   json={"anchor": anchor.isoformat(), "period": {"unit": "day", "count": 1}})
        assert billing.status_code == 200, billing.text
        plans = [("usd", RATES[index % len(RATES)])] + ([("eur", "1")] if index % 4 == 0 else [])
        for currency, rate in plans:
            wallet = await client.post("/v1/wallets", json={
                "customer_id": customer, "currency": currency.upper(), "conversion_rate": rate,
                "initial_credits_to_load": str(CREDITS[currency])})
            assert wallet.status_code == 200, wallet.text
            wallets[wallet.json()["id"]] = (customer, currency, rate)
    return wallets


def expected_figures(owed: Expected, currency: str, rate: str) -> dict[str, str]:
    balance = CREDITS[currency] * Decimal(rate)
    usage = owed.totals().get(currency, Decimal(0))
    return {"credit_balance": to_wire(CREDITS[currency]), "balance": to_wire(balance),
            "current_period_usage": to_wire(usage), "unpaid_invoices_amount": "0",
            "real_time_balance": to_wire(balance - usage),
            "real_time_credit_balance": to_wire(divide(canonical(balance - usage), Decimal(rate)))}


def expected_usage(owed: Expected, anchor: datetime) -> dict[str, Any]:
    totals = {currency: to_wire(amount) for currency, amount in owed.totals().items()}
    return {"usage_events": owed.events, "periods": [{
        "start": anchor, "end": anchor + timedelta(days=1), "events": owed.events, "late_events": 0,
        "unpriced_events": owed.unpriced, "lines": owed.lines(), "totals": totals}]}


def usage_shape(summary: dict[str, Any]) -> dict[str, Any]:
    """A usage summary with its lines keyed by lookup_key, and times parsed."""
    return {"usage_events": summary["usage_events"], "periods": [{
        "start": datetime.fromisoformat(p["start"]), "end": datetime.fromisoformat(p["end"]), "events": p["events"],
        "late_events": p["late_events"], "unpriced_events": p["unpriced_events"], "totals": p["totals"],
        "lines": {line["lookup_key"]: (line["quantity"], line["amount"], line["events"]) for line in p["lines"]},
    } for p in summary["periods"]]}


async def stream_lengths(redis: Redis, keys: Keys) -> int:
    return sum([await redis.xlen(keys.log(AccountRef(TENANT, ENVIRONMENT, c))) for c in CUSTOMERS])


async def balances(client: httpx.AsyncClient, wallet_id: str, cached: bool = False) -> dict[str, Any]:
    reply = await client.get(f"/v1/wallets/{wallet_id}/balance/real-time", params={"from_cache": str(cached).lower()})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    assert body.pop("is_cached_fallback") is cached
    return body


def changed_copy(event: dict[str, Any], n: int) -> dict[str, Any]:
    """The same event id with another payload (and name, timestamp): a retry must keep the first."""
    return {**event, "event_name": "llm_call" if n % 2 else "api_request",
            "properties": {"tokens": 99_999, "region": "eu"}, "timestamp": rfc3339(datetime.now(UTC))}


async def retry_with_other_payloads(processes: SplitProcesses, events: list[dict[str, Any]]) -> None:
    """Twenty already-accepted ids again alone and twenty in one bulk, each with another payload."""
    async with LoopbackClient(processes.host, processes.port, {"x-api-key": API_KEY}) as connection:
        for n, event in enumerate(events[:20]):
            status, data = await connection.post("/v1/events", msgspec.json.encode(changed_copy(event, n)))
            assert status == 202, data
        status, data = await connection.post("/v1/events/bulk", msgspec.json.encode(
            {"events": [changed_copy(event, n) for n, event in enumerate(events[20:40])]}))
    assert (status, int(msgspec.json.decode(data)["duplicates"])) == (202, 20)


async def exact_reads_match(client: httpx.AsyncClient, wallets: dict[str, tuple[str, str, str]],
                            owed: dict[str, Expected], anchor: datetime) -> None:
    """Every wallet's exact balance and every customer's usage summary equal the once-each expectation."""
    figures = {wallet_id: {name: (await balances(client, wallet_id))[name] for name in FIGURES}
               for wallet_id in wallets}
    assert figures == {wallet_id: expected_figures(owed[customer], currency, rate)
                       for wallet_id, (customer, currency, rate) in wallets.items()}
    summaries = {c: usage_shape((await client.get(f"/v1/customers/{c}/usage")).json()) for c in CUSTOMERS}
    assert summaries == {c: expected_usage(owed[c], anchor) for c in CUSTOMERS}


async def cached_reads_match(client: httpx.AsyncClient, wallets: dict[str, tuple[str, str, str]],
                             owed: dict[str, Expected]) -> None:
    """Once caught up, the snapshot alone answers exactly what the exact read answers, field by field."""
    for wallet_id, (customer, currency, rate) in wallets.items():
        exact, cached = await balances(client, wallet_id), await balances(client, wallet_id, cached=True)
        assert cached == exact, f"cached read of {wallet_id} differs from the exact one"
        assert {name: cached[name] for name in FIGURES} == expected_figures(owed[customer], currency, rate)


@pytest.mark.parametrize("api_workers", [1, 2], ids=["one API worker", "two API workers"])
async def test_every_event_posted_twice_concurrently_is_charged_once(clean_redis: str, tmp_path: Path,
                                                                     api_workers: int) -> None:
    rng = random.Random(SEED)
    keys = Keys(PARTITIONS)
    redis = connect(clean_redis)
    store, projection = EventStore(redis, keys, dedup_ttl_seconds=3600), Projection(redis, keys)
    try:
        with split_processes(clean_redis, tmp_path, api_workers) as processes:
            async with httpx.AsyncClient(base_url=processes.url, headers={"x-api-key": API_KEY}, timeout=30) as client:
                anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
                wallets = await setup_accounts(client, anchor)
                # generated after the prices exist, so every timestamp is at or after their effective_from
                events, owed = usage_events(rng, datetime.now(UTC))
                posts, repeats = interleaved_posts(rng, events)
                before = await stream_lengths(redis, keys)

                bulk_duplicates = await post_concurrently(processes, posts)
                await retry_with_other_payloads(processes, rng.sample(events, 40))

                assert await stream_lengths(redis, keys) - before == EVENTS, "each event id appended exactly once"
                assert repeats <= bulk_duplicates <= EVENTS + repeats
                await exact_reads_match(client, wallets, owed, anchor)
                await wait_caught_up(store, projection, timeout=CATCH_UP_TIMEOUT)
                await cached_reads_match(client, wallets, owed)
                assert processes.running(), processes.log_tails()

        report = await verify_all(store, projection)
        assert (report.drifts, report.behind) == ([], [])
        assert (report.accounts, report.events) == (len(CUSTOMERS), before + EVENTS)
    finally:
        await redis.aclose()


async def test_a_retry_with_another_payload_keeps_the_first(clean_redis: str) -> None:
    first = {"event_name": "api_call", "external_customer_id": "cust_r", "event_id": "e-1",
             "properties": {"tokens": "10"}}
    async with running_app(clean_redis) as client:
        price = await client.post("/v1/prices", json={
            "event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
            "billing_model": "FLAT_FEE", "amount": "0.5"})
        wallet = await client.post("/v1/wallets", json={"customer_id": "cust_r", "currency": "USD",
                                                        "initial_credits_to_load": "100", "conversion_rate": "2"})
        assert (price.status_code, wallet.status_code) == (201, 200), (price.text, wallet.text)
        wallet_id = wallet.json()["id"]
        replies = [await client.post("/v1/events", json=body) for body in [
            first,
            {**first, "properties": {"tokens": "1000"}},
            {**first, "event_name": "other_meter", "properties": {}},
            {**first, "timestamp": rfc3339(datetime.now(UTC) + timedelta(seconds=60)), "source": "retry"},
        ]]
        bulk = await client.post("/v1/events/bulk", json={"events": [
            {**first, "properties": {"tokens": "7"}}, {**first, "event_id": "e-2", "properties": {"tokens": "4"}}]})
        balance = await balances(client, wallet_id)
        usage = (await client.get("/v1/customers/cust_r/usage")).json()

        principal = PRINCIPALS[HARNESS_KEY]
        ref = AccountRef(principal.tenant_id, principal.environment_id, "cust_r")
        redis = connect(clean_redis)
        try:
            await wait_folded(redis, ref, partitions=APP_PARTITIONS)
            log = await EventStore(redis, Keys(APP_PARTITIONS), dedup_ttl_seconds=3600).read_log(ref)
        finally:
            await redis.aclose()
        cached = await balances(client, wallet_id, cached=True)
        caught_up = await balances(client, wallet_id)  # the exact read once folded: same freshness fields

    assert [(r.status_code, r.json()) for r in replies] == [
        (202, {"message": "Event accepted for processing", "event_id": "e-1"})] * 4
    assert (bulk.status_code, bulk.json()["accepted"], bulk.json()["duplicates"]) == (202, "2", "1")
    usages = [event for _, event in log if isinstance(event, UsageRecorded)]
    assert [(u.id, u.event_name, u.properties, u.source) for u in usages] == [
        ("e-1", "api_call", {"tokens": "10"}, ""), ("e-2", "api_call", {"tokens": "4"}, "")]
    # (10 + 4) tokens x 0.5 = 7 USD pending against 100 credits x 2 = 200 USD
    assert {name: balance[name] for name in FIGURES} == {
        "credit_balance": "100", "balance": "200", "current_period_usage": "7", "unpaid_invoices_amount": "0",
        "real_time_balance": "193", "real_time_credit_balance": "96.5"}
    line = usage["periods"][0]["lines"][0]
    assert (usage["usage_events"], line["quantity"], line["amount"], line["events"]) == (2, "14", "7", 2)
    assert cached == caught_up
    assert {name: caught_up[name] for name in FIGURES} == {name: balance[name] for name in FIGURES}
