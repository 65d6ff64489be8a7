"""Operator commands: lag, verify, replay and migrate (the dead letters are in cli/dlq.py)."""

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import check_store, connect, err, load_settings, one_customer
from cli.progress import replay_progress
from projector import operate
from projector.migrate import migrate as run_migration
from projector.replay import Replayer, ReplayReport
from store.eventstore import EventStore
from store.meta import LAYOUT, LayoutRefused
from store.projection import Lag, Projection
from store.verify import VerifyReport

ops = typer.Typer()
wide = Console(soft_wrap=True, highlight=False)  # lines an operator greps: never wrapped


@ops.command()
def lag() -> None:
    """Per partition: checkpoint, feed head, events behind, age of the oldest unfolded event, lease holder."""
    settings = load_settings()

    async def main() -> list[Lag]:
        redis, keys = connect(settings)
        try:
            await check_store(redis, keys)
            return await operate.lag_table(Projection(redis, keys))
        finally:
            await redis.aclose()

    rows = asyncio.run(main())
    nodes = any(row.node for row in rows)  # a Redis Cluster: which primary holds each partition
    table = Table("partition", "checkpoint", "feed head", "behind", "oldest unfolded age", "lease holder",
                  *(["node"] if nodes else []))
    for row in rows:
        age = operate.age_ms(row)
        table.add_row(str(row.partition), row.checkpoint, row.head, str(row.behind),
                      "-" if age is None else f"{age} ms", row.holder or "-", *([row.node or "-"] if nodes else []))
    Console().print(table)


@ops.command()
def verify(
    customer: Annotated[str | None, typer.Option(help="verify one customer (with --tenant and --environment)")] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="verify this many accounts picked at random")] = None,
) -> None:
    """Fold every account (or one, or a sample) from zero and compare with its snapshot; exit 1 on any drift or
    on an account that cannot be read or folded (quarantined)."""
    settings = load_settings()
    ref = one_customer(customer, tenant, environment)

    async def main() -> VerifyReport:
        redis, keys = connect(settings)
        try:
            await check_store(redis, keys)
            store = EventStore(redis, keys, settings.dedup_ttl_seconds)
            return await operate.verify(store, Projection(redis, keys, settings.ledger_keep), ref, sample)
        finally:
            await redis.aclose()

    report = asyncio.run(main())
    for drift in report.drifts:
        Console().print(f"DRIFT {drift.ref.tenant_id}/{drift.ref.environment_id}/{drift.ref.customer_id} "
                        f"{drift.field}: snapshot={drift.snapshot} log={drift.log}")
    for problem in report.problems:
        who = problem.ref
        wide.print(f"PROBLEM {who.tenant_id}/{who.environment_id}/{who.customer_id}: {problem.reason}", markup=False)
    Console().print(f"verified accounts={report.accounts} events={report.events} drifts={len(report.drifts)} "
                    f"behind={len(report.behind)} problems={len(report.problems)}")
    if not report.ok:
        raise typer.Exit(1)


@ops.command()
def replay(
    customer: Annotated[str | None, typer.Option(help="rebuild one customer (with --tenant and --environment)")] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="fold and compare with the live snapshots; change nothing")]
    = False,
) -> None:
    """Rebuild projections from the streams into a new generation, then switch reads to it (blue/green)."""
    settings = load_settings()
    ref = one_customer(customer, tenant, environment)

    async def main(progress: Callable[[int, int], None]) -> ReplayReport:
        redis, keys = connect(settings)
        try:
            await check_store(redis, keys)
            replayer = Replayer(redis, keys, timedelta(seconds=settings.period_grace_seconds),
                                settings.dedup_ttl_seconds, ledger_keep=settings.ledger_keep)
            if ref is not None:
                return await replayer.rebuild_one(ref, dry_run)
            return await replayer.rebuild_all(dry_run, progress)
        finally:
            await redis.aclose()

    with replay_progress() as progress:
        report = asyncio.run(main(progress))
    for drift in report.drifts:
        Console().print(f"DRIFT {drift.ref.customer_id} {drift.field}: snapshot={drift.snapshot} log={drift.log}")
    rebuilt = "" if dry_run or ref is not None else " (rebuilt quarantined: see tally dlq)"
    for letter in report.quarantined:
        who = letter.ref
        wide.print(f"CANNOT FOLD {who.tenant_id}/{who.environment_id}/{who.customer_id} at {letter.log_position}: "
                   f"{letter.reason}{rebuilt}", markup=False)
    action = "compared" if dry_run else ("switched to" if report.switched else "built")
    Console().print(f"replay {action} generation {report.generation}: accounts={report.accounts} "
                    f"events={report.events} seconds={report.seconds:.2f} events/s={report.rate:,.0f} "
                    f"drifts={len(report.drifts)} cannot_fold={len(report.quarantined)}")
    if report.drifts or report.quarantined:
        raise typer.Exit(1)


@ops.command()
def migrate() -> None:
    """Bring a store written by an older tally layout (ledgers inside the snapshots) to this one: rebuild every
    projection from the streams, then record the layout. Stop every tally process first."""
    settings = load_settings()

    async def main(progress: Callable[[int, int], None]) -> ReplayReport | None:
        redis, keys = connect(settings)
        try:
            return await run_migration(redis, keys, timedelta(seconds=settings.period_grace_seconds),
                                       settings.dedup_ttl_seconds, settings.lease_ttl_ms * 2, progress,
                                       settings.ledger_keep)
        except LayoutRefused as exc:
            err.print(f"[red]migrate:[/red] {exc}")
            raise typer.Exit(2) from exc
        finally:
            await redis.aclose()

    with replay_progress() as progress:
        report = asyncio.run(main(progress))
    if report is None:
        Console().print(f"the store is in layout {LAYOUT} already: nothing to migrate")
        return
    Console().print(f"migrated to layout {LAYOUT}: generation {report.generation}, accounts={report.accounts} "
                    f"events={report.events} seconds={report.seconds:.2f} cannot_fold={len(report.quarantined)}")
