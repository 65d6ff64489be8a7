"""Fault injection (issue 4): every scenario ends with a fold from zero of every stream compared with its snapshot
(store.verify.verify_all) and a count of each event id's applications; each prints a row of the fault table
(scenario, events, faults injected, lost, duplicated, drift), and every row must read 0 lost, 0 duplicated, 0 drift.

The fast versions run in `make test`; the full ones (@pytest.mark.slow) in `make faults`. Run with `-s` to see
the table; it is also written to faults_table.txt under pytest's temporary directory (python -m bench.faults_table
runs the suite and prints it). Each scenario runs against a redis-server of its own and reaps every process it
started. Outcomes: "ok"; "KNOWN BUG", a reported bug's signature was met (the test is xfail(strict=True,
raises=KnownBug): any other failure still fails it, and a fix makes it XPASS, which fails it too); "ok (bug seen)",
a known bug that strikes on some runs only struck, its deterministic reproduction being another test.
The webhook row reads its columns as deliveries made, dribbled attempts, another tenant's deliveries that
waited for one of its hanging attempts to end or never came, and messages received twice (scenarios/webhooks.py).
"""

import asyncio
import random
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fault.scenarios import (
    archive,
    crash,
    failover,
    fencing,
    poison,
    quarantine,
    redelivery,
    replay,
    restart,
    switch,
    takeover,
    trimming,
    webhooks,
)
from tests.support.faults import FaultTable, KnownBug, Row

TABLE = FaultTable()
SEEDS: list[int] = []


@pytest.fixture(scope="module", autouse=True)
def fault_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultTable]:
    yield TABLE
    if TABLE.rows:
        path = tmp_path_factory.mktemp("faults") / "faults_table.txt"
        TABLE.write(path)
        print(f"\n\nFAULT TABLE ({path})\n{TABLE.render()}\n", flush=True)


async def record(scenario: Coroutine[Any, Any, Row], timeout: float) -> None:
    """Run a scenario under an overall deadline (its `finally` blocks reap what it started), then add its row. The
    deadline only marks a stall: a loaded machine makes a scenario slower, never wrong."""
    try:
        row = await asyncio.wait_for(scenario, timeout)
    except BaseException as failure:
        failure.add_note(f"random seed {SEEDS[-1] if SEEDS else None}")
        raise
    row.note += f"; seed {SEEDS[-1]}" if SEEDS else ""
    TABLE.add(row)
    assert not row.problems, f"{row.scenario}: {row.problems}: {row.note}"
    assert row.clean or (row.known_bugs and row.bug_explains_columns), \
        f"{row.scenario}: lost={row.lost} duplicated={row.duplicated} drift={row.drift}: {row.note}"
    if row.known_bugs:
        raise KnownBug(f"{row.scenario}: {row.known_bugs}; lost={row.lost} duplicated={row.duplicated} "
                       f"drift={row.drift}: {row.note}")


def seed() -> int:
    """A fresh random seed for the scenario, printed in its row (and so in any failure) to replay it."""
    SEEDS.append(random.randrange(1 << 30))
    return SEEDS[-1]


async def test_projector_killed_after_read_after_commit_and_at_random(tmp_path: Path) -> None:
    await record(crash.run(tmp_path, kills=6, accounts=16, seconds=150, seed=seed()), timeout=300)


@pytest.mark.slow
async def test_projector_killed_many_times_at_every_point(tmp_path: Path) -> None:
    await record(crash.run(tmp_path, kills=60, accounts=40, seconds=500, seed=seed()), timeout=600)


async def test_a_projector_paused_past_its_lease_is_fenced_off(tmp_path: Path) -> None:
    await record(fencing.run(tmp_path, zombies=2, pauses=2, seed=seed()), timeout=300)


@pytest.mark.slow
async def test_many_paused_projectors_are_fenced_off(tmp_path: Path) -> None:
    await record(fencing.run(tmp_path, zombies=20, pauses=20, seed=seed()), timeout=400)


async def test_entries_delivered_again_after_a_checkpoint_rollback_are_no_ops(tmp_path: Path) -> None:
    await record(redelivery.run(tmp_path, rollbacks=6, accounts=16, seed=seed()), timeout=300)


@pytest.mark.slow
async def test_many_checkpoint_rollbacks_under_load(tmp_path: Path) -> None:
    await record(redelivery.run(tmp_path, rollbacks=80, accounts=40, seed=seed()), timeout=400)


@pytest.mark.parametrize("fsync", ["always", "everysec"])
async def test_redis_killed_under_load_keeps_what_it_acknowledged(tmp_path: Path, fsync: str) -> None:
    await record(restart.run(tmp_path, fsync, kills=2 if fsync == "always" else 1, load_s=0.6, seed=seed()),
                 timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["always", "everysec"])
async def test_redis_killed_many_times_under_load(tmp_path: Path, fsync: str) -> None:
    await record(restart.run(tmp_path, fsync, kills=10, load_s=2.0, seed=seed()), timeout=400)


async def test_trimming_the_feed_never_drops_what_a_lagging_projector_needs(tmp_path: Path) -> None:
    await record(trimming.run(tmp_path, lag_s=1.0, accounts=16, seed=seed()), timeout=300)


@pytest.mark.slow
async def test_trimming_hard_through_a_long_lag(tmp_path: Path) -> None:
    await record(trimming.run(tmp_path, lag_s=2.5, accounts=40, seed=seed()), timeout=400)


async def test_an_undecodable_entry_quarantines_its_account_until_retried(tmp_path: Path) -> None:
    await record(quarantine.run(tmp_path, "feed-garbage", burst=0, seed=seed()), timeout=300)


async def test_an_undecodable_entry_in_the_middle_of_a_batch_quarantines_only_its_account(tmp_path: Path) -> None:
    await record(quarantine.run(tmp_path, "feed-garbage-mid-batch", burst=20, seed=seed()), timeout=300)


async def test_a_poison_account_is_quarantined_alone_then_retried_and_dropped(tmp_path: Path) -> None:
    await record(quarantine.run(tmp_path, "unfoldable", burst=0, seed=seed()), timeout=300)


async def test_a_feed_entry_with_garbage_fields_halts_its_partition(tmp_path: Path) -> None:
    await record(poison.run(tmp_path, "fields", burst=0, seed=seed()), timeout=300)


async def test_replay_switches_generation_under_writes_and_reads(tmp_path: Path) -> None:
    await record(replay.run(tmp_path, customers=12, before_s=0.5, after_s=1.2, seed=seed()), timeout=300)


@pytest.mark.slow
async def test_replay_of_a_bigger_log_under_writes_and_reads(tmp_path: Path) -> None:
    await record(replay.run(tmp_path, customers=60, before_s=8.0, after_s=4.0, seed=seed()), timeout=400)


async def test_a_generation_switch_in_the_middle_of_a_batch(tmp_path: Path) -> None:
    await record(switch.run(tmp_path, seed=seed()), timeout=300)


async def test_a_receiver_dribbling_its_reply_does_not_delay_another_tenants_delivery(tmp_path: Path) -> None:
    await record(webhooks.run(tmp_path, a_endpoints=5, a_notices=10, b_notices=5, seed=seed()), timeout=300)


@pytest.mark.slow
async def test_many_dribbling_receivers_do_not_delay_another_tenants_deliveries(tmp_path: Path) -> None:
    await record(webhooks.run(tmp_path, a_endpoints=20, a_notices=50, b_notices=20, seed=seed()), timeout=400)


async def test_an_archiver_killed_at_each_step_loses_and_repeats_nothing(tmp_path: Path) -> None:
    await record(archive.run_kills(tmp_path, rounds=1, accounts=8, seed=seed()), timeout=180)


@pytest.mark.slow
async def test_an_archiver_killed_at_each_step_many_times(tmp_path: Path) -> None:
    await record(archive.run_kills(tmp_path, rounds=5, accounts=24, seed=seed()), timeout=600)


async def test_a_zombie_archiver_is_fenced_at_its_commit(tmp_path: Path) -> None:
    await record(archive.run_zombie(tmp_path, accounts=8, seed=seed()), timeout=120)


@pytest.mark.parametrize("damage", ["deleted", "corrupted"])
async def test_a_lost_or_corrupted_segment_is_named_and_nothing_is_trimmed(tmp_path: Path, damage: str) -> None:
    await record(archive.run_broken(tmp_path, damage, accounts=8, seed=seed()), timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("wait", [True, False], ids=["wait-replicas-1", "no-wait"])
async def test_a_cluster_primary_killed_under_load_fails_over(tmp_path: Path, wait: bool) -> None:
    await record(failover.run(tmp_path, wait, kills=2, load_s=2.0, seed=seed()), timeout=400)


async def test_a_projector_killed_with_partitions_on_three_cluster_nodes_is_taken_over(tmp_path: Path) -> None:
    await record(takeover.run(tmp_path, kills=1, per_partition=2, seed=seed()), timeout=300)


@pytest.mark.slow
async def test_projectors_killed_again_and_again_on_a_cluster(tmp_path: Path) -> None:
    await record(takeover.run(tmp_path, kills=5, per_partition=3, seed=seed()), timeout=600)
