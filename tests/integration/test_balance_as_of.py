"""GET /v1/wallets/{id}/balance/as-of on a real Redis: at every prefix of random histories (snapshots folded at
the half) it answers what a real-time read answered when the log ended there; an instant between two appends reads
the earlier one; a lot counts until its expiry instant; bad requests are 400s (or 404, 409) with the ErrorResponse
shape."""

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from redis.asyncio import Redis

from api import accounts as accounts_module
from api.accounts import Accounts
from api.balances import BREAKDOWN, read_balance
from cli.wiring import run_projector
from domain.identity import AccountRef
from store.batches import BatchAppended, Group, append_batch
from store.connect import connect
from store.eventstore import Appended, Dedup, EventStore
from store.keys import Keys
from store.positions import parse
from store.projection import Projection
from tests.support.catchup import wait_caught_up
from tests.support.harness import OTHER_KEY, PARTITIONS, PRINCIPALS, ManualClock, make_settings, running_app
from tests.support.histories import World, histories, play
from tests.support.poison import append_event, grant, unfoldable_grant

CALLER = PRINCIPALS["test-key"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FRESHNESS = ("folded_position", "folded_at")  # a real-time read's snapshot; an as-of answer folds on the spot


def instant(position: str) -> datetime:
    """When a customer-stream entry was appended: the millisecond its id carries."""
    return EPOCH + timedelta(milliseconds=parse(position)[0])


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Recorded:
    """The real-time reads of an account's wallets, taken right after an append left its log ending at `position`
    (None: the wallet did not exist yet)."""

    ref: AccountRef
    position: str
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)


class RecordingStore(EventStore):
    """After each append, the real-time read of every wallet of the account, as the API answers it, with the
    service clock at the instant of the last entry appended."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        super().__init__(redis, keys, 3600)
        self.recorded: list[Recorded] = []

    async def append(self, ref: AccountRef, events: Any, dedup: Dedup | None = None,
                     expect: str | None = None) -> Appended:
        appended = await super().append(ref, events, dedup, expect)
        if appended.status == "appended":
            await self.record(ref, appended.positions[-1])
        return appended

    async def record(self, ref: AccountRef, position: str) -> None:
        account = (await self.read_account(ref)).account
        assert account.position == position, "nothing else appends while the history is written"
        service = Accounts(self, clock=lambda: instant(position))
        recorded = Recorded(ref, position)
        for wallet_id in account.wallets:
            await self.index_wallet(wallet_id, ref)
            reply = await read_balance(wallet_id, CALLER, service, BREAKDOWN, False)
            recorded.reads[wallet_id] = json.loads(bytes(reply.body))
        self.recorded.append(recorded)

    async def append_batch(self, ref: AccountRef, groups: Sequence[Group], expect: str) -> BatchAppended:
        """Commands append through api/accounts.py's group commit: recorded the same way."""
        appended = await append_batch(self, ref, groups, expect)
        if appended.status == "appended":
            await self.record(ref, appended.positions[-1][-1])
        return appended


async def recording_batches(store: EventStore, ref: AccountRef, groups: Sequence[Group],
                            expect: str) -> BatchAppended:
    if isinstance(store, RecordingStore):
        return await store.append_batch(ref, groups, expect)
    return await append_batch(store, ref, groups, expect)


async def as_of(client: httpx.AsyncClient, wallet_id: str, **params: str) -> httpx.Response:
    return await client.get(f"/v1/wallets/{wallet_id}/balance/as-of", params={"expand": BREAKDOWN, **params})


def assert_same_read(answer: httpx.Response, recorded: dict[str, Any] | None, where: str) -> None:
    if recorded is None:
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", f"{where}: {answer.text}"
        return
    assert answer.status_code == 200, f"{where}: {answer.text}"
    body = answer.json()
    assert body["folded_position"] == body["read_position"] and "folded_at" not in body, where
    expected = {k: v for k, v in recorded.items() if k not in FRESHNESS}
    got = {k: v for k, v in body.items() if k not in FRESHNESS}
    assert got == expected, f"{where}: as-of differs from the real-time read then"


async def fold_everything(redis: Redis, store: EventStore) -> None:
    """Run the projector until every snapshot has reached the head of its stream, then stop it."""
    stop = asyncio.Event()
    projector = asyncio.create_task(run_projector(redis, make_settings(), stop, "as-of-test"))
    try:
        await wait_caught_up(store, Projection(redis, store.keys), timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(projector, timeout=10)


async def check_prefixes(url: str, ops: list[object]) -> None:
    redis = connect(url)
    try:
        await redis.flushdb()
        store = RecordingStore(redis, Keys(PARTITIONS))
        accounts_module.append_batch = recording_batches  # type: ignore[assignment]
        world = World(store)
        half = len(ops) // 2  # snapshots at the half: later moments start from them, earlier ones from zero
        await play(world, ops[:half])
        await fold_everything(redis, store)
        await play(world, ops[half:])
        assert store.recorded, "the history appended nothing: the generator is broken"
        wallets: dict[AccountRef, set[str]] = {}
        for wallet_id, ref in world.wallets:
            wallets.setdefault(ref, set()).add(wallet_id)
            await store.index_wallet(wallet_id, ref)
        async with running_app(url, projector=False) as client:
            for ref in wallets:
                await check_account(client, store, ref, wallets[ref])
    finally:
        accounts_module.append_batch = append_batch
        await redis.aclose()


async def check_account(client: httpx.AsyncClient, store: RecordingStore, ref: AccountRef, wallets: set[str]) -> None:
    """Every position of the log: recorded ones answer the recorded reads, by `position` and by `at` (its
    millisecond, and an instant inside it) when no later entry shares that millisecond; others name themselves."""
    log = [position for position, _ in await store.read_log(ref)]
    recorded = {r.position: r for r in store.recorded if r.ref == ref}
    for index, position in enumerate(log):
        following = log[index + 1] if index + 1 < len(log) else None
        if position not in recorded:  # inside a multi-event append: never visible to a real-time read
            for wallet_id in wallets:
                answer = await as_of(client, wallet_id, position=position)
                assert answer.status_code == 404 or answer.json()["read_position"] == position, answer.text
            continue
        alone = following is None or parse(following)[0] > parse(position)[0]
        for wallet_id in sorted(wallets):
            read = recorded[position].reads.get(wallet_id)
            assert_same_read(await as_of(client, wallet_id, position=position), read, f"position={position}")
            if alone:
                moments = (instant(position), instant(position) + timedelta(microseconds=500))
                for moment in moments:
                    answer = await as_of(client, wallet_id, at=stamp(moment))
                    assert_same_read(answer, read, f"at={stamp(moment)} (last entry {position})")


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories)
def test_as_of_every_prefix_equals_the_real_time_read_taken_then(clean_redis: str, history: list[object]) -> None:
    asyncio.run(check_prefixes(clean_redis, history))


async def ok(reply: Any) -> dict[str, Any]:
    response = await reply
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_past(moment: datetime) -> None:
    """Poll the wall clock until it is past `moment` (bounded: milliseconds are expected)."""
    deadline = asyncio.get_running_loop().time() + 5
    while datetime.now(UTC) <= moment:
        assert asyncio.get_running_loop().time() < deadline, "the wall clock did not move"
        await asyncio.sleep(0.001)


async def test_an_instant_between_two_appends_reads_the_earlier_one(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet = await ok(client.post("/v1/wallets", json={"customer_id": "cust_1", "currency": "USD",
                                                           "initial_credits_to_load": "10"}))
        first = (await ok(client.get(f"/v1/wallets/{wallet['id']}/balance/real-time")))["read_position"]
        await wait_past(instant(first) + timedelta(milliseconds=2))
        await ok(client.post(f"/v1/wallets/{wallet['id']}/top-up",
                             json={"credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_DIRECT"}))
        second = (await ok(client.get(f"/v1/wallets/{wallet['id']}/balance/real-time")))["read_position"]
        between = await ok(as_of(client, wallet["id"], at=stamp(instant(first) + timedelta(milliseconds=1))))
        after = await ok(as_of(client, wallet["id"], at=stamp(instant(second))))
        before = await as_of(client, wallet["id"], at=stamp(instant(first) - timedelta(milliseconds=1)))
        now = await ok(as_of(client, wallet["id"], at=stamp(datetime.now(UTC))))
    assert parse(first)[0] + 1 < parse(second)[0]
    assert (between["credit_balance"], between["read_position"]) == ("10", first)
    assert (after["credit_balance"], after["read_position"]) == ("15", second)
    assert before.status_code == 404 and before.json()["code"] == "not_found"
    assert (now["credit_balance"], now["read_position"], now["is_cached_fallback"]) == ("15", second, False)


async def test_at_takes_every_entry_of_its_millisecond_and_position_stops_where_it_says(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet = await ok(client.post("/v1/wallets", json={"customer_id": "cust_1", "currency": "USD"}))
        store = EventStore(connect(clean_redis), Keys(PARTITIONS), 3600)
        try:  # two entries of one append, until a pair shares its millisecond (Redis 7.0 may not freeze time)
            earlier = 0  # credits of the pairs before it
            for _ in range(20):
                appended = await store.append(AccountRef("tenant_a", "env_a", "cust_1"),
                                              [grant(wallet["id"], "1"), grant(wallet["id"], "2")])
                first, second = appended.positions
                if parse(first)[0] == parse(second)[0]:
                    break
                earlier += 3
            else:
                raise AssertionError("no two entries of one append shared a millisecond in 20 tries")
        finally:
            await store.redis.aclose()
        by_position = await ok(as_of(client, wallet["id"], position=first))
        by_instant = await ok(as_of(client, wallet["id"], at=stamp(instant(first))))
    assert parse(first)[1] < parse(second)[1]
    assert (by_position["credit_balance"], by_position["read_position"]) == (str(earlier + 1), first)
    assert (by_instant["credit_balance"], by_instant["read_position"]) == (str(earlier + 3), second)


async def test_a_lot_counts_until_the_instant_it_expires(clean_redis: str) -> None:
    clock = ManualClock(datetime.now(UTC))
    expiry = clock.now.replace(microsecond=0) + timedelta(seconds=60)
    async with running_app(clean_redis, projector=False, clock=clock) as client:
        wallet = await ok(client.post("/v1/wallets", json={"customer_id": "cust_1", "currency": "USD",
                                                           "initial_credits_to_load": "3"}))
        await ok(client.post(f"/v1/wallets/{wallet['id']}/top-up", json={
            "credits_to_add": "7", "transaction_reason": "PURCHASED_CREDIT_DIRECT", "expiry_date_utc": stamp(expiry)}))
        clock.advance(timedelta(seconds=120))
        reads = {label: await ok(as_of(client, wallet["id"], at=stamp(moment))) for label, moment in [
            ("before", expiry - timedelta(microseconds=1)), ("at", expiry), ("after", expiry + timedelta(seconds=1))]}
        real_time = await ok(client.get(f"/v1/wallets/{wallet['id']}/balance/real-time",
                                        params={"expand": BREAKDOWN}))
    assert reads["before"]["credit_balance"] == "10"
    assert reads["before"]["credits_available_breakdown"] == {"free": "3", "purchased": "7"}
    assert reads["at"]["credit_balance"] == reads["after"]["credit_balance"] == "3"
    assert reads["after"]["credits_available_breakdown"] == {"free": "3", "purchased": "0"}
    assert reads["before"]["read_position"] == reads["after"]["read_position"] == real_time["read_position"]
    assert real_time["credit_balance"] == "3"


async def test_refusals_have_the_error_shape_and_change_nothing(clean_redis: str, aredis: Redis) -> None:
    clock = ManualClock(datetime.now(UTC))
    async with running_app(clean_redis, projector=False, clock=clock) as client:
        wallet = await ok(client.post("/v1/wallets", json={"customer_id": "cust_1", "currency": "USD",
                                                           "initial_credits_to_load": "10"}))
        log = Keys(PARTITIONS).log(AccountRef("tenant_a", "env_a", "cust_1"))
        length = await aredis.xlen(log)
        now_ms = (clock.now - EPOCH) // timedelta(milliseconds=1)
        refused = {
            "neither": {}, "both": {"at": stamp(clock.now), "position": "1-0"}, "empty": {"at": "", "position": ""},
            "no zone": {"at": "2024-01-01T00:00:00"}, "not a time": {"at": "yesterday"},
            "before 1970": {"at": "1969-12-31T23:59:59Z"}, "future at": {"at": stamp(clock.now + timedelta(seconds=1))},
            "future position": {"position": f"{now_ms + 1}-0"}, "no sequence": {"position": "12345"},
            "letters": {"position": "12a-0"}, "21 digits": {"position": f"{'9' * 21}-0"},
            "unknown expand": {"at": stamp(clock.now), "expand": "everything"},
        }
        answers = {name: await client.get(f"/v1/wallets/{wallet['id']}/balance/as-of", params=params)
                   for name, params in refused.items()}
        missing = await as_of(client, "wallet_nope", at=stamp(clock.now))
        foreign = await client.get(f"/v1/wallets/{wallet['id']}/balance/as-of", params={"at": stamp(clock.now)},
                                   headers={"x-api-key": OTHER_KEY})
        keyless = await client.get(f"/v1/wallets/{wallet['id']}/balance/as-of", params={"at": stamp(clock.now)},
                                   headers={"x-api-key": ""})
        assert await aredis.xlen(log) == length
    for name, answer in answers.items():
        body = answer.json()
        assert answer.status_code == 400 and body["code"] == "validation_error", f"{name}: {answer.text}"
        assert body["http_status_code"] == 400 and body["message"] and isinstance(body["details"], dict), name
    for answer in (missing, foreign):
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", answer.text
    assert keyless.status_code == 401


async def test_an_unfoldable_entry_is_a_409_after_it_and_not_before(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet = await ok(client.post("/v1/wallets", json={"customer_id": "cust_1", "currency": "USD",
                                                           "initial_credits_to_load": "4"}))
        good = (await ok(client.get(f"/v1/wallets/{wallet['id']}/balance/real-time")))["read_position"]
        store = EventStore(connect(clean_redis), Keys(PARTITIONS), 3600)
        try:
            await append_event(store, AccountRef("tenant_a", "env_a", "cust_1"), unfoldable_grant(wallet["id"]))
        finally:
            await store.redis.aclose()
        before = await ok(as_of(client, wallet["id"], position=good))
        after = await as_of(client, wallet["id"], at=stamp(datetime.now(UTC)))
    assert (before["credit_balance"], before["read_position"]) == ("4", good)
    assert after.status_code == 409 and after.json()["code"] == "account_quarantined", after.text
