"""Operator commands: lag, verify, replay, and the dead-letter entries a partition halted on."""

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from cli import wiring
from cli.common import connect, err, load_settings, one_customer
from cli.progress import replay_progress
from cli.settings import Settings
from projector import operate
from projector.replay import Replayer, ReplayReport
from store.deadletters import DeadLetters
from store.eventstore import EventStore
from store.generation import live_generation
from store.projection import Lag, Projection
from store.verify import VerifyReport

ops = typer.Typer()


@ops.command()
def lag() -> None:
    """Per partition: checkpoint, feed head, events behind, age of the oldest unfolded event, lease holder."""
    settings = load_settings()

    async def main() -> list[Lag]:
        redis, keys = connect(settings)
        try:
            return await operate.lag_table(Projection(redis, keys))
        finally:
            await redis.aclose()

    rows = asyncio.run(main())
    table = Table("partition", "checkpoint", "feed head", "behind", "oldest unfolded age", "lease holder")
    for row in rows:
        age = operate.age_ms(row)
        table.add_row(str(row.partition), row.checkpoint, row.head, str(row.behind),
                      "-" if age is None else f"{age} ms", row.holder or "-")
    Console().print(table)


@ops.command()
def verify(
    customer: Annotated[str | None, typer.Option(help="verify one customer (with --tenant and --environment)")] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="verify this many accounts picked at random")] = None,
) -> None:
    """Fold every account (or one, or a sample) from zero and compare with its snapshot; exit 1 on any drift."""
    settings = load_settings()
    ref = one_customer(customer, tenant, environment)

    async def main() -> VerifyReport:
        redis, keys = connect(settings)
        try:
            store = EventStore(redis, keys, settings.dedup_ttl_seconds)
            return await operate.verify(store, Projection(redis, keys), ref, sample)
        finally:
            await redis.aclose()

    report = asyncio.run(main())
    for drift in report.drifts:
        Console().print(f"DRIFT {drift.ref.tenant_id}/{drift.ref.environment_id}/{drift.ref.customer_id} "
                        f"{drift.field}: snapshot={drift.snapshot} log={drift.log}")
    Console().print(f"verified accounts={report.accounts} events={report.events} drifts={len(report.drifts)} "
                    f"behind={len(report.behind)}")
    if report.drifts:
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
            replayer = Replayer(redis, keys, timedelta(seconds=settings.period_grace_seconds),
                                settings.dedup_ttl_seconds)
            if ref is not None:
                return await replayer.rebuild_one(ref, dry_run)
            return await replayer.rebuild_all(dry_run, progress)
        finally:
            await redis.aclose()

    with replay_progress() as progress:
        report = asyncio.run(main(progress))
    for drift in report.drifts:
        Console().print(f"DRIFT {drift.ref.customer_id} {drift.field}: snapshot={drift.snapshot} log={drift.log}")
    action = "compared" if dry_run else ("switched to" if report.switched else "built")
    Console().print(f"replay {action} generation {report.generation}: accounts={report.accounts} "
                    f"events={report.events} seconds={report.seconds:.2f} events/s={report.rate:,.0f} "
                    f"drifts={len(report.drifts)}")
    if report.drifts:
        raise typer.Exit(1)


dlq = typer.Typer(help="Entries a projector could not decode: its partition halts on them until retried or dropped.")


def _dead_letters(settings: Settings, action: Callable[[DeadLetters], Any]) -> Any:
    async def main() -> Any:
        redis, keys = connect(settings)
        try:
            keys = msgspec.structs.replace(keys, generation=await live_generation(redis, keys))
            return await action(DeadLetters(redis, keys))
        finally:
            await redis.aclose()

    return asyncio.run(main())


@dlq.command("list")
def dlq_list() -> None:
    """Halted partitions: the entry each stopped on and why."""
    halts = _dead_letters(load_settings(), lambda d: d.list())
    for halt in halts:
        Console().print(f"partition={halt.partition} position={halt.position} reason={halt.reason!r}")
    Console().print(f"{len(halts)} halted partition(s)")


@dlq.command("show")
def dlq_show(partition: int) -> None:
    """The raw fields of the entry a partition halted on."""
    entry = _dead_letters(load_settings(), lambda d: d.show(partition))
    if entry is None:
        Console().print(f"partition {partition} is not halted")
        raise typer.Exit(1)
    Console().print(f"position={entry.position}")
    for name, value in entry.fields.items():
        Console().print(f"  {name} = {value}")


@dlq.command("retry")
def dlq_retry(partition: int) -> None:
    """Clear the halt so the projector tries the entry again (after deploying a fix)."""
    if not _dead_letters(load_settings(), lambda d: d.retry(partition)):
        Console().print(f"partition {partition} is not halted")
        raise typer.Exit(1)
    Console().print(f"partition {partition}: retrying")


@dlq.command("drop")
def dlq_drop(
    partition: int,
    yes: Annotated[bool, typer.Option("--yes", help="confirm: skip the entry (recorded on the operations stream)")]
    = False,
) -> None:
    """Skip the halted entry; the skip and the entry's raw bytes are recorded as an operations event."""
    if not yes:
        err.print("[red]dropping skips an entry for good: pass --yes to confirm[/red]")
        raise typer.Exit(2)
    dropped = _dead_letters(load_settings(), lambda d: d.drop(partition, wiring.holder_name()))
    if dropped is None:
        Console().print(f"partition {partition} is not halted")
        raise typer.Exit(1)
    Console().print(f"partition {partition}: dropped {dropped}; recorded on the operations stream")
