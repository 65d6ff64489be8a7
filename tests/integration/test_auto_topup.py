"""Auto top-up under a burst: 10,000 usage events from concurrent clients against real `tally api` + `tally projector`
processes on a real Redis, on wallets whose auto top-up is enabled.

Afterwards each customer stream is folded from zero, event by event, and audited: no two top-ups share an
idempotency key; every top-up answers a trigger the fold armed (the real-time credit balance at or below the threshold
at that position, the cooldown since the previous top-up respected) and was still armed when it landed; and the
stream holds exactly as many top-ups as the fold armed triggers. The same holds when the projector is SIGKILLed
mid-burst and another one takes over. Also here: the clock deciding on a read that went stale before its append.
"""

import asyncio
import random
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from api.accounts import Accounts
from domain.balance import view_balance
from domain.codec import encode_account, encode_ref
from domain.commands import TopUpWallet
from domain.events import AnyEvent, CreditsGranted, UsageRecorded
from domain.fold import advance_logged
from domain.identity import AccountRef
from domain.ledger import ledgers
from domain.state import EMPTY_ACCOUNT, Account, LedgerWrite
from domain.watch import auto_topup_key, is_auto_topup
from projector.clock import PartitionClock
from store.connect import connect
from store.eventstore import AccountRead, EventStore
from store.keys import Keys
from store.projection import Projection
from tests.support.catchup import lag
from tests.support.harness import PRINCIPALS, running_app
from tests.support.loopback import LoopbackClient
from tests.support.spawned_projectors import SpawnedProjectors
from tests.support.split_processes import API_KEY, ENVIRONMENT, PARTITIONS, TENANT, SplitProcesses, split_processes

EVENTS = 10_000
BULK_EVENTS = 8_000  # in bulks of BULK; the other 2,000 posted one by one
BULK = 100
RETRY_EVERY = 100  # every 100th single event is posted twice (a producer retry: appended once)
CLIENTS = 8
BURST_SECONDS = 3.0  # the posts are spread over at least this long, so the top-up loop turns several times
INGEST_TIMEOUT = 120.0
SETTLE_TIMEOUT = 120.0  # polled: only marks a stall (a loaded machine folds slowly, never wrongly)
UNITS_PER_EVENT = 10  # x 0.01 USD = 0.1 USD per event
PRICE = {"event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "units"},
         "billing_model": "FLAT_FEE", "amount": "0.01"}


@dataclass(frozen=True)
class Plan:
    rate: str
    initial: int
    threshold: int
    amount: int
    cooldown: int


# cust_fast tops up as often as the fold asks; cust_cool (rate 2: 0.05 credits an event) waits a second between.
PLANS = {"cust_fast": Plan(rate="1", initial=100, threshold=50, amount=40, cooldown=0),
         "cust_cool": Plan(rate="2", initial=60, threshold=30, amount=10, cooldown=1)}


def ref_of(customer: str) -> AccountRef:
    return AccountRef(TENANT, ENVIRONMENT, customer)


@dataclass(frozen=True)
class Post:
    path: str
    body: bytes
    events: int


def burst(rng: random.Random) -> list[Post]:
    """EVENTS usage events over both customers: bulks and singles (some retried), shuffled together."""
    customers = list(PLANS)
    events = [{"event_id": f"ev-{n:05d}", "event_name": "api_call", "external_customer_id": customers[n % 2],
               "properties": {"units": UNITS_PER_EVENT}} for n in range(EVENTS)]
    posts = [Post("/v1/events/bulk", msgspec.json.encode({"events": events[i:i + BULK]}), BULK)
             for i in range(0, BULK_EVENTS, BULK)]
    for n, event in enumerate(events[BULK_EVENTS:]):
        posts.append(Post("/v1/events", msgspec.json.encode(event), 1))
        if n % RETRY_EVERY == 0:
            posts.append(Post("/v1/events", msgspec.json.encode(event), 0))
    rng.shuffle(posts)
    return posts


async def post_concurrently(processes: SplitProcesses, posts: list[Post], fractions: list[float],
                            callback: Callable[[], None]) -> int:
    """CLIENTS keep-alive connections drain the posts, the n-th not before n/len(posts) of BURST_SECONDS; every
    answer must be a 202. Calls `callback` once as each of `fractions` of the posts has been answered. Returns the
    events posted (retries not counted)."""
    pending = enumerate(posts)
    marks = sorted(int(f * len(posts)) for f in fractions)
    answered = posted = 0
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def client() -> None:
        nonlocal answered, posted
        async with LoopbackClient(processes.host, processes.port, {"x-api-key": API_KEY}) as connection:
            for index, post in pending:
                await asyncio.sleep(max(0.0, start + index * BURST_SECONDS / len(posts) - loop.time()))
                status, data = await connection.post(post.path, post.body)
                assert status == 202, f"{post.path} answered {status}: {data[:300]!r}"
                answered += 1
                posted += post.events
                while marks and answered >= marks[0]:
                    marks.pop(0)
                    callback()

    async with asyncio.timeout(INGEST_TIMEOUT), asyncio.TaskGroup() as group:
        for _ in range(CLIENTS):
            group.create_task(client())
    return posted


async def set_up(client: httpx.AsyncClient) -> dict[str, str]:
    """The price and one PRE_PAID wallet with auto top-up per customer; returns customer -> wallet id."""
    price = await client.post("/v1/prices", json=PRICE)
    assert price.status_code == 201, price.text
    wallets = {}
    for customer, plan in PLANS.items():
        reply = await client.post("/v1/wallets", json={
            "customer_id": customer, "currency": "USD", "conversion_rate": plan.rate,
            "initial_credits_to_load": str(plan.initial),
            "auto_topup": {"enabled": True, "threshold": plan.threshold, "amount": plan.amount,
                           "cooldown_seconds": plan.cooldown}})
        assert reply.status_code == 200, reply.text
        wallets[customer] = reply.json()["id"]
    return wallets


async def wait_settled(store: EventStore, projection: Projection, timeout: float) -> None:
    """Poll until everything is folded and no wallet has a top-up armed (so the clock has nothing left to add)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        behind = await lag(store, projection)
        armed = [f"{c}: armed at {w.auto_topup_trigger}" for c in PLANS
                 for w in (await store.read_account(ref_of(c))).account.wallets.values()
                 if w.auto_topup_trigger is not None]
        if not behind and not armed:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"not settled in {timeout}s: {(behind + armed)[:5]}")
        await asyncio.sleep(0.05)


@dataclass
class Audit:
    """What folding one customer stream from zero says about its wallet's auto top-ups."""

    armed: list[str] = field(default_factory=list)  # trigger positions, in order
    disarmed: list[str] = field(default_factory=list)  # triggers the balance recovered from before a top-up
    granted: list[str] = field(default_factory=list)  # the trigger each auto top-up named, in stream order
    keys: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    usage: int = 0
    held_in_flight: int = 0  # events at or below the threshold that did not arm: a top-up was in flight
    held_by_cooldown: int = 0  # … that did not arm: the cooldown since the last top-up had not passed
    account: Account = EMPTY_ACCOUNT
    ledger: list[LedgerWrite] = field(default_factory=list)  # the ledger changes of the fold, in order


def audit(log: list[tuple[str, AnyEvent]], wallet_id: str, plan: Plan) -> Audit:
    found = Audit()
    cooldown = timedelta(seconds=plan.cooldown)
    last_grant_at: datetime | None = None
    positions = {position for position, _ in log}
    for position, event in log:
        before = found.account
        found.account, written = advance_logged(before, position, event)
        found.ledger.extend(written)
        was = before.wallets.get(wallet_id)
        now = found.account.wallets.get(wallet_id)
        found.usage += isinstance(event, UsageRecorded)
        if isinstance(event, CreditsGranted) and is_auto_topup(event.idempotency_key):
            assert event.idempotency_key is not None
            trigger = event.idempotency_key.rpartition(":")[2]
            found.granted.append(trigger)
            found.keys.append(event.idempotency_key)
            if event.idempotency_key != auto_topup_key(wallet_id, trigger) or trigger not in positions:
                found.problems.append(f"{position}: top-up key {event.idempotency_key} names no position of the log")
            elif was is None or was.auto_topup_trigger != trigger:
                found.problems.append(f"{position}: top-up for {trigger} landed while "
                                      f"{'nothing' if was is None else was.auto_topup_trigger} was armed")
            if (event.credits, event.reason, event.pending) != (Decimal(plan.amount), "PURCHASED_CREDIT_DIRECT", False):
                found.problems.append(f"{position}: top-up of {event.credits} {event.reason} pending={event.pending}")
            if now is not None and now.auto_topup_trigger is not None:
                found.problems.append(f"{position}: the top-up's own grant armed {now.auto_topup_trigger}")
            last_grant_at = event.at
            continue
        if was is not None and was.auto_topup_trigger is not None and now is not None \
                and now.auto_topup_trigger != was.auto_topup_trigger:
            found.disarmed.append(was.auto_topup_trigger)
            balance = view_balance(found.account, now, event.at).real_time_credit_balance
            if balance <= plan.threshold:
                found.problems.append(f"{position}: trigger {was.auto_topup_trigger} disarmed at {balance}")
        if now is None:
            continue
        balance = view_balance(found.account, now, event.at).real_time_credit_balance
        # A zero cooldown never holds a trigger back, even when acceptance stamps arrive out of order.
        cooling = bool(cooldown) and last_grant_at is not None and event.at < last_grant_at + cooldown
        if now.auto_topup_trigger == position:
            found.armed.append(position)
            if balance > plan.threshold:
                found.problems.append(f"{position}: armed at a real-time credit balance of {balance}")
            if cooling:
                found.problems.append(f"{position}: armed at {event.at}, the last top-up at {last_grant_at}")
        elif balance <= plan.threshold:
            found.held_in_flight += now.auto_topup_trigger is not None
            found.held_by_cooldown += now.auto_topup_trigger is None and cooling
    return found


async def assert_top_ups_justified(store: EventStore, projection: Projection,
                                   wallets: dict[str, str]) -> dict[str, Audit]:
    """The audit of every customer stream, asserted; returned per customer."""
    audits = {}
    for customer, plan in PLANS.items():
        log = await store.read_log(ref_of(customer))
        ids = [event.id for _, event in log]
        assert len(ids) == len(set(ids)), f"{customer}: an event id is in the stream twice"
        found = audit(log, wallets[customer], plan)
        assert found.problems == [], f"{customer}: {found.problems[:5]}"
        assert [k for k, n in Counter(found.keys).items() if n > 1] == [], f"{customer}: a top-up key twice"
        assert found.disarmed == [], f"{customer}: only usage follows the initial credits: nothing recovers"
        armed = [t for t in found.armed if t not in found.disarmed]
        assert found.granted == armed, f"{customer}: top-ups {found.granted} != triggers {armed}"
        assert found.usage == EVENTS // 2
        wallet = found.account.wallets[wallets[customer]]
        assert wallet.auto_topup_trigger is None
        ledger = [e for e in ledgers(found.ledger).get(wallet.id, []) if is_auto_topup(e.idempotency_key)]
        assert len(ledger) == len(found.granted)
        [snapshot] = await projection.load_snapshots([ref_of(customer)])
        assert snapshot.state == encode_account(found.account), f"{customer}: snapshot != fold from zero"
        audits[customer] = found
    return audits


async def run_burst(url: str, workdir: Path, kill_at: list[float]) -> dict[str, Audit]:
    keys = Keys(PARTITIONS)
    redis = connect(url)
    store, projection = EventStore(redis, keys, 3600), Projection(redis, keys)
    spares = SpawnedProjectors(url, PARTITIONS, workdir, lease_ttl_ms="1000", block_ms="20",
                                clock_interval_ms="200", log_level="WARNING")
    try:
        with split_processes(url, workdir) as processes:
            async with httpx.AsyncClient(base_url=processes.url, headers={"x-api-key": API_KEY}, timeout=30) as client:
                wallets = await set_up(client)

            def kill_and_replace() -> None:
                """SIGKILL the projector that is folding (the first one, then each replacement); start another."""
                if spares.running:
                    spares.kill(next(iter(spares.running)))
                else:
                    processes.projector.send_signal(signal.SIGKILL)
                    processes.projector.wait(timeout=10)
                spares.start()

            posted = await post_concurrently(processes, burst(random.Random(7)), kill_at, kill_and_replace)
            assert posted == EVENTS
            await wait_settled(store, projection, SETTLE_TIMEOUT)
            assert processes.api.poll() is None, processes.log_tails()
            if kill_at:
                assert processes.projector.returncode == -signal.SIGKILL
                assert (spares.killed, spares.exited_on_their_own()) == (len(kill_at) - 1, {})
            else:
                assert processes.projector.poll() is None, processes.log_tails()
            audits = await assert_top_ups_justified(store, projection, wallets)
        print(f"\nauto top-ups {({c: len(a.granted) for c, a in audits.items()})} (killed at {kill_at}); held in "
              f"flight {({c: a.held_in_flight for c, a in audits.items()})}, by cooldown "
              f"{({c: a.held_by_cooldown for c, a in audits.items()})}")
        return audits
    finally:
        spares.close()
        await redis.aclose()


async def test_a_burst_of_usage_tops_up_exactly_as_often_as_the_fold_says(clean_redis: str, tmp_path: Path) -> None:
    audits = await run_burst(clean_redis, tmp_path, kill_at=[])
    fast, cool = audits["cust_fast"], audits["cust_cool"]
    # The audit is not vacuous: top-ups happened, and both guards held back triggers the balance asked for.
    assert len(fast.granted) >= 3 and len(cool.granted) >= 2, (fast.granted, cool.granted)
    assert fast.held_in_flight > 0 and fast.held_by_cooldown == 0
    assert cool.held_by_cooldown > 0


async def test_a_projector_killed_mid_burst_and_replaced_adds_no_duplicate_top_up(
    clean_redis: str, tmp_path: Path
) -> None:
    audits = await run_burst(clean_redis, tmp_path, kill_at=[0.4])
    assert len(audits["cust_fast"].granted) >= 1


@pytest.mark.slow
async def test_projectors_killed_three_times_mid_burst_add_no_duplicate_top_up(
    clean_redis: str, tmp_path: Path
) -> None:
    audits = await run_burst(clean_redis, tmp_path, kill_at=[0.2, 0.45, 0.7])
    assert len(audits["cust_fast"].granted) >= 1


class RacingStore(EventStore):
    """An EventStore whose first account read is followed, before the caller can act on it, by another writer's
    top-up: the interleaving a clock meets when a customer tops up just as it decides."""

    def __init__(self, redis: Redis, keys: Keys, concurrent: Callable[[], Any]) -> None:
        super().__init__(redis, keys, 3600)
        self.concurrent = concurrent
        self.raced = False

    async def read_account(self, ref: AccountRef, cached: bool = False) -> AccountRead:
        read = await super().read_account(ref, cached)
        if not self.raced:
            self.raced = True
            await self.concurrent()
        return read


async def test_the_clock_appends_no_top_up_for_a_trigger_disarmed_since_its_read(clean_redis: str) -> None:
    tenant = PRINCIPALS["test-key"]
    ref = AccountRef(tenant.tenant_id, tenant.environment_id, "cust_race")
    keys = Keys(4)
    async with running_app(clean_redis, projector=False) as client:
        reply = await client.post("/v1/wallets", json={
            "customer_id": "cust_race", "currency": "USD", "initial_credits_to_load": "100",
            "auto_topup": {"enabled": True, "threshold": 50, "amount": 40}})
        assert reply.status_code == 200, reply.text
        wallet_id = reply.json()["id"]
        debit = await client.post(f"/v1/wallets/{wallet_id}/debit", json={"credits": "60"})
        assert debit.status_code == 200, debit.text
    redis = connect(clean_redis)
    try:
        async def customer_tops_up() -> None:
            command = TopUpWallet(event_id="evt-race", actor="race", wallet_id=wallet_id, transaction_id="wtx-race",
                                  reason="PURCHASED_CREDIT_DIRECT", credits=Decimal(100))
            await Accounts(EventStore(redis, keys, 3600)).execute(ref, command)

        store = RacingStore(redis, keys, customer_tops_up)
        armed = (await EventStore(redis, keys, 3600).read_account(ref)).account.wallets[wallet_id]
        assert armed.auto_topup_trigger is not None  # 40 credits left: at or below 50
        partition = keys.partition_of(ref)
        await redis.zadd(keys.due(partition), {encode_ref(ref): 0})
        clock = PartitionClock(store, Projection(redis, keys), timedelta(hours=1), now=lambda: datetime.now(UTC))
        await clock.run(partition)
        log = await store.read_log(ref)
        after = (await store.read_account(ref)).account.wallets[wallet_id]
        assert after.auto_topup_trigger is None  # 140 credits: the trigger was disarmed by the customer's top-up
        top_ups = [e for _, e in log if isinstance(e, CreditsGranted) and is_auto_topup(e.idempotency_key)]
        assert top_ups == [], f"a top-up for a disarmed trigger was appended: {top_ups}"
    finally:
        await redis.aclose()
