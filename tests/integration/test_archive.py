"""The archive on a real Redis: `tally archive` moves folded history into Parquet segments and trims the streams,
and the log read whole (read_log, verify, replay, a real-time read, appends after it) is what it was before."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from store.verify import verify_all
from tests.support.archive import archive_env, make_history, stream_lengths, tally, whole_logs
from tests.support.harness import PARTITIONS, ManualClock, make_settings, running_app, wait_folded

CUSTOMERS = ["cust_a1", "cust_a2", "cust_a3"]


def refs() -> list[AccountRef]:
    return [AccountRef("tenant_a", "env_a", c) for c in CUSTOMERS]


async def history(redis_url: str, aredis: Redis) -> None:
    clock = ManualClock(datetime(2026, 2, 27, tzinfo=UTC))
    async with running_app(redis_url, clock=clock) as client:
        await make_history(client, CUSTOMERS, usage=0)
        clock.advance(timedelta(days=33))
        await make_history(client, CUSTOMERS, usage=6, prices=False)
        for ref in refs():
            await wait_folded(aredis, ref)


async def test_archived_history_reads_as_before_and_appends_go_on(clean_redis: str, aredis: Redis,
                                                                   tmp_path: Path) -> None:
    await history(clean_redis, aredis)
    store, projection = EventStore(aredis, Keys(PARTITIONS), 3600), Projection(aredis, Keys(PARTITIONS))
    before = await whole_logs(store)
    balances = [(await store.read_account(ref)).account for ref in refs()]
    assert await stream_lengths(store) == sum(len(v) for v in before.values())

    dry = tally(clean_redis, "archive", "--dry-run", env=archive_env(tmp_path))
    assert dry.returncode == 0 and "trimmed=0" in dry.stdout, dry.stdout + dry.stderr
    assert await stream_lengths(store) == sum(len(v) for v in before.values())
    done = tally(clean_redis, "archive", env=archive_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert await stream_lengths(store) == 0, done.stdout
    assert list(tmp_path.glob("partition=*/segment-*.parquet"))

    assert await whole_logs(store) == before
    assert [(await store.read_account(ref)).account for ref in refs()] == balances
    assert (await verify_all(store, projection)).ok
    assert tally(clean_redis, "verify").returncode == 0
    compared = tally(clean_redis, "replay", "--dry-run")
    assert compared.returncode == 0 and "drifts=0" in compared.stdout, compared.stdout + compared.stderr
    assert f"events={sum(len(v) for v in before.values())}" in compared.stdout, compared.stdout

    again = tally(clean_redis, "archive", env=archive_env(tmp_path))  # nothing left: a no-op
    assert again.returncode == 0 and "rows=0" in again.stdout, again.stdout
    async with running_app(clean_redis) as client:  # an emptied stream still knows where it ends: no gap
        wallet_id = (await client.get(f"/v1/customers/{CUSTOMERS[0]}/wallets")).json()[0]["id"]
        debit = await client.post(f"/v1/wallets/{wallet_id}/debit", json={
            "credits": "1", "transaction_reason": "MANUAL_BALANCE_DEBIT", "idempotency_key": "after-archive"})
        assert debit.status_code == 200, debit.text
        await wait_folded(aredis, refs()[0])
    after = await whole_logs(store)
    grown = after[refs()[0]]
    assert grown[:len(before[refs()[0]])] == before[refs()[0]]
    assert any(getattr(event, "idempotency_key", None) == "after-archive" for _, event in grown)
    report = await verify_all(store, projection)
    assert report.ok and not report.problems, report
    switched = tally(clean_redis, "replay")
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert tally(clean_redis, "verify").returncode == 0


async def test_the_projector_archives_the_partitions_it_holds_in_the_background(
    clean_redis: str, aredis: Redis, tmp_path: Path
) -> None:
    settings = make_settings(archive_interval_seconds=1, archive_after="0s", archive_url=str(tmp_path))
    store = EventStore(aredis, Keys(PARTITIONS), 3600)
    async with running_app(clean_redis, settings=settings) as client:
        await make_history(client, CUSTOMERS, usage=2, month="2026-11", price_month="2027-01")
        for ref in refs():
            await wait_folded(aredis, ref)
        before = await whole_logs(store)
        deadline = asyncio.get_running_loop().time() + 60
        while await stream_lengths(store) > 0:  # polled: the rounds run every second
            assert asyncio.get_running_loop().time() < deadline, "the background archiver never emptied the streams"
            await asyncio.sleep(0.1)
    assert await whole_logs(store) == {ref: log for ref, log in before.items()}
    assert list(tmp_path.glob("partition=*/segment-*.parquet"))
    assert tally(clean_redis, "verify").returncode == 0
