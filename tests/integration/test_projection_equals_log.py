"""Invariant 1 on a real Redis: for random histories with archive runs at random points, snapshot == real-time read
== fold from zero of archive + live == the balance as of the last position, and the transactions list (stored
entries plus the unfolded tail's, and past the few entries Redis keeps per wallet here, the log folded again) ==
the ledger that fold wrote."""

import asyncio
import json
import tempfile
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from api.accounts import Accounts
from api.asof import read_balance_as_of
from api.auth import Principal
from api.balances import BREAKDOWN, read_balance
from cli.wiring import run_projector
from domain.codec import encode_account
from domain.fold import fold
from domain.identity import AccountRef
from domain.ledger import ledgers
from domain.state import EMPTY_ACCOUNT, LedgerEntry
from store.archive.archiver import Archiver
from store.archive.objects import open_files
from store.connect import connect
from store.entries import fold_log
from store.eventstore import EventStore
from store.keys import Keys
from store.ledger import in_window, ledger_mapping, load_with_snapshot
from store.ledger_pages import read_page
from store.positions import parse
from store.projection import Projection
from store.verify import verify_all
from tests.support.catchup import assert_same_account, wait_caught_up
from tests.support.components import archive_settings
from tests.support.harness import test_settings as projector_settings
from tests.support.histories import World, histories, play

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEEP = 3  # ledger entries Redis keeps per wallet: small, so that histories trim some


async def check_history(url: str, ops: list[object], live: bool, read_after: int, archive_last: bool) -> None:
    """Write the history (with the projector running alongside, or started after; the archiver running where the
    history says, and perhaps once more at the end), catch up, compare."""
    redis = connect(url)
    config = projector_settings(ledger_keep=KEEP)
    keys = Keys(config.partitions)
    store, projection = EventStore(redis, keys, 3600), Projection(redis, keys, KEEP)
    stop = asyncio.Event()
    projector: asyncio.Task[None] | None = None
    with tempfile.TemporaryDirectory() as segments:
        archiving = archive_settings("prop", after_ms=0, lease_ttl_ms=30_000)
        archiver = Archiver(redis, keys, open_files(segments), archiving)
        try:
            await redis.flushdb()
            world = World(store, archive=lambda: archive_folded(archiver, store, projection, keys.partitions,
                                                                folding=projector is not None))
            if live:
                projector = asyncio.create_task(run_projector(redis, config, stop, "prop-live"))
            await play(world, ops)
            if projector is None:
                await assert_transactions_equal_fold(world)  # nothing folded yet: every entry comes from the tail
                projector = asyncio.create_task(run_projector(redis, config, stop, "prop-after"))
            await wait_caught_up(store, projection, timeout=120)
            if archive_last:
                archived = await archive_folded(archiver, store, projection, keys.partitions, folding=True)
                assert archived > 0 or await archived_before(redis, keys), "the archiver archived nothing"
            await assert_projection_equals_log(world, projection, world.now + timedelta(seconds=read_after))
        finally:
            stop.set()
            if projector is not None:
                await asyncio.wait_for(projector, timeout=10)
            await redis.aclose()


async def archive_folded(archiver: Archiver, store: EventStore, projection: Projection, partitions: int,
                         folding: bool) -> int:
    """Let the projector, when it runs, fold what was written (when it does not, nothing is folded and nothing
    archives), then archive every partition: the rows archived."""
    if folding:
        await wait_caught_up(store, projection, timeout=120)
    rows = 0
    for partition in range(partitions):
        report = await archiver.run(partition)
        assert not report.problem, report.problem
        rows += report.rows
    return rows


async def archived_before(redis: Redis, keys: Keys) -> bool:
    """Whether an earlier archive round of the history already moved entries out (so the last had nothing left)."""
    return any([await redis.exists(keys.archive_segments(p)) for p in range(keys.partitions)])


async def assert_projection_equals_log(world: World, projection: Projection, now: datetime) -> None:
    store = world.store
    assert world.appended, "the history appended nothing: the generator is broken"
    for ref, acknowledged in world.appended.items():
        cached, exact = await store.read_account(ref, cached=True), await store.read_account(ref)
        log = await store.read_log(ref)
        from_zero = fold(EMPTY_ACCOUNT, log)
        assert exact.tail == 0 and cached.snapshot_position == exact.snapshot_position == from_zero.position
        assert len(log) == acknowledged == from_zero.applied == cached.account.applied == exact.account.applied
        assert_same_account({"snapshot": cached.account, "real-time": exact.account, "fold from zero": from_zero},
                            now)
        [raw] = await projection.load_snapshots([ref])
        assert raw.state == encode_account(from_zero), "the stored snapshot is not byte-identical to a rebuild"
        _, stored = await load_with_snapshot(store.redis, store.keys, ref)
        rebuilt = fold_log(EMPTY_ACCOUNT, await store.read_raw_log(ref), store.rate_cards)
        entries, ids = ledger_mapping(in_window(rebuilt.ledger, rebuilt.account, KEEP))
        assert stored.entries == entries, "the stored ledger is not byte-identical to a rebuild's"
        assert {k: int(v) for k, v in stored.ids.items()} == ids
        await assert_as_of_last_equals_real_time(store, ref, list(exact.account.wallets), from_zero.position)
    await assert_transactions_equal_fold(world)
    report = await verify_all(store, projection)
    assert report.drifts == [] and report.behind == []
    assert (report.accounts, report.events) == (len(world.appended), sum(world.appended.values()))


async def assert_transactions_equal_fold(world: World) -> None:
    """Every wallet's transactions, listed newest first page by page (cursor) and by offset, equal the ledger a fold
    of its stream from zero wrote."""
    store = world.store
    for ref in world.appended:
        from_zero = fold_log(EMPTY_ACCOUNT, await store.read_raw_log(ref), store.rate_cards)
        expected = ledgers(from_zero.ledger)
        for wallet_id in from_zero.account.wallets:
            newest_first = expected.get(wallet_id, [])[::-1]
            assert await list_by_cursor(store, ref, wallet_id, 3) == newest_first, f"{wallet_id}: list != fold"
            page = await read_page(store, ref, wallet_id, None, 2, 4)
            assert page.entries == newest_first[2:6]
            assert page.wallet.entries == len(newest_first)


async def list_by_cursor(store: EventStore, ref: AccountRef, wallet_id: str, size: int) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    start: int | None = None
    while True:
        page = await read_page(store, ref, wallet_id, start, 0, size)
        entries.extend(page.entries)
        if page.next_seq is None:
            return entries
        start = page.next_seq


async def assert_as_of_last_equals_real_time(
    store: EventStore, ref: AccountRef, wallet_ids: list[str], last: str
) -> None:
    """The balance as of the log's last position is the real-time read taken at that position's instant, field by
    field (but `folded_at`: when the projector folded the snapshot the real-time read started from)."""
    service = Accounts(store, clock=lambda: EPOCH + timedelta(milliseconds=parse(last)[0]))
    caller = Principal(ref.tenant_id, ref.environment_id)
    for wallet_id in wallet_ids:
        await store.index_wallet(wallet_id, ref)
        real_time = json.loads(bytes((await read_balance(wallet_id, caller, service, BREAKDOWN, False)).body))
        as_of = json.loads(bytes((await read_balance_as_of(wallet_id, caller, service, BREAKDOWN, None,
                                                           last)).body))
        assert as_of["read_position"] == as_of["folded_position"] == last and "folded_at" not in as_of
        real_time.pop("folded_at", None)
        assert as_of == real_time, f"as-of {last} differs from the real-time read of {wallet_id}"


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories, live=st.booleans(), read_after=st.integers(0, 7200), archive_last=st.booleans())
def test_snapshot_real_time_read_and_fold_from_zero_are_equal(
    clean_redis: str, history: list[object], live: bool, read_after: int, archive_last: bool
) -> None:
    asyncio.run(check_history(clean_redis, history, live, read_after, archive_last))
