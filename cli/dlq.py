"""`tally dlq`: partitions halted on an entry naming no readable account, and accounts quarantined on their own."""

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console

from cli import wiring
from cli.common import check_store, connect, err, load_settings, one_customer
from domain.identity import AccountRef
from projector.quarantine import Operator, Outcome
from store.deadletters import DeadLetters
from store.eventstore import EventStore
from store.generation import live_generation
from store.letters import DeadLetter
from store.projection import Projection
from store.quarantine import Quarantines

dlq = typer.Typer(help="Dead letters: a partition halts on an entry naming no readable account; an account whose "
                       "own entry cannot be folded is quarantined while its partition goes on. Retry or drop them.")
out = Console(soft_wrap=True, highlight=False)
Partition = Annotated[int | None, typer.Argument(help="a halted partition")]
Customer = Annotated[str | None, typer.Option(help="a quarantined account (with --tenant and --environment)")]
Tenant = Annotated[str | None, typer.Option()]
Environment = Annotated[str | None, typer.Option()]


class Tools(msgspec.Struct):
    halts: DeadLetters
    quarantines: Quarantines
    operator: Operator


def _run(action: Callable[[Tools], Coroutine[Any, Any, Any]]) -> Any:
    settings = load_settings()

    async def main() -> Any:
        redis, keys = connect(settings)
        try:
            await check_store(redis, keys)
            keys = msgspec.structs.replace(keys, generation=await live_generation(redis, keys))
            store = EventStore(redis, keys, settings.dedup_ttl_seconds)
            operator = Operator(store, Projection(redis, keys, settings.ledger_keep),
                                timedelta(seconds=settings.period_grace_seconds))
            return await action(Tools(DeadLetters(redis, keys), Quarantines(redis, keys), operator))
        finally:
            await redis.aclose()

    return asyncio.run(main())


def _target(partition: int | None, customer: str | None, tenant: str | None, environment: str | None
            ) -> int | AccountRef:
    ref = one_customer(customer, tenant, environment)
    if (partition is None) == (ref is None):
        err.print("[red]name a halted partition, or an account with --customer --tenant --environment[/red]")
        raise typer.Exit(2)
    if ref is not None:
        return ref
    assert partition is not None
    return partition


def _name(ref: AccountRef) -> str:
    return f"{ref.tenant_id}/{ref.environment_id}/{ref.customer_id}"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@dlq.command("list")
def dlq_list() -> None:
    """Halted partitions (the entry each stopped on) and quarantined accounts (the entry each is set aside on)."""
    async def both(tools: Tools) -> tuple[Any, list[tuple[int, DeadLetter]]]:
        letters = await tools.quarantines.every()
        return await tools.halts.list(), [(tools.quarantines.keys.partition_of(x.ref), x) for x in letters]

    halts, letters = _run(both)
    for halt in halts:
        out.print(f"partition={halt.partition} position={halt.position} reason={halt.reason!r}")
    for partition, letter in letters:
        out.print(f"account={_name(letter.ref)} partition={partition} kind={letter.kind} "
                        f"position={letter.log_position} feed_position={letter.feed_position or '-'} "
                        f"at={_when(letter.at_ms)} reason={letter.reason!r}", markup=False)
    out.print(f"{len(halts)} halted partition(s), {len(letters)} quarantined account(s)")


@dlq.command("show")
def dlq_show(partition: Partition = None, customer: Customer = None, tenant: Tenant = None,
             environment: Environment = None) -> None:
    """The raw fields of the entry a partition halted on, or the record and raw entry of a quarantined account."""
    target = _target(partition, customer, tenant, environment)
    if isinstance(target, AccountRef):
        ref = target
        letter = _run(lambda tools: tools.quarantines.get(ref))
        if letter is None:
            out.print(f"account {_name(ref)} is not quarantined")
            raise typer.Exit(1)
        _print_letter(letter)
        return
    number = target
    entry = _run(lambda tools: tools.halts.show(number))
    if entry is None:
        out.print(f"partition {number} is not halted")
        raise typer.Exit(1)
    out.print(f"position={entry.position}")
    for name, value in entry.fields.items():
        out.print(f"  {name} = {value}")


def _print_letter(letter: DeadLetter) -> None:
    out.print(f"account={_name(letter.ref)} kind={letter.kind}\nlog_position={letter.log_position}\n"
                    f"feed_position={letter.feed_position or '-'}\nat={_when(letter.at_ms)}\nreason={letter.reason}")
    out.print(f"  e = {letter.raw!r}", markup=False)
    if letter.rates is not None:
        out.print(f"  r = {letter.rates!r}", markup=False)


@dlq.command("retry")
def dlq_retry(partition: Partition = None, customer: Customer = None, tenant: Tenant = None,
              environment: Environment = None) -> None:
    """Clear a partition's halt, or refold a quarantined account and release it if it now folds (after a fix)."""
    target = _target(partition, customer, tenant, environment)
    if isinstance(target, AccountRef):
        ref = target
        _report(ref, _run(lambda tools: tools.operator.retry(ref)))
        return
    number = target
    if not _run(lambda tools: tools.halts.retry(number)):
        out.print(f"partition {number} is not halted")
        raise typer.Exit(1)
    out.print(f"partition {number}: retrying")


@dlq.command("drop")
def dlq_drop(
    partition: Partition = None, customer: Customer = None, tenant: Tenant = None, environment: Environment = None,
    yes: Annotated[bool, typer.Option("--yes", help="confirm: skip the entry (recorded on the operations stream)")]
    = False,
) -> None:
    """Skip a halted partition's entry, or remove a quarantined account's entry and refold it (recorded, raw)."""
    target = _target(partition, customer, tenant, environment)
    if not yes:
        err.print("[red]dropping skips an entry for good: pass --yes to confirm[/red]")
        raise typer.Exit(2)
    if isinstance(target, AccountRef):
        ref = target
        _report(ref, _run(lambda tools: tools.operator.drop(ref, wiring.holder_name())))
        return
    number = target
    dropped = _run(lambda tools: tools.halts.drop(number, wiring.holder_name()))
    if dropped is None:
        out.print(f"partition {number} is not halted")
        raise typer.Exit(1)
    out.print(f"partition {number}: dropped {dropped}; recorded on the operations stream")


def _report(ref: AccountRef, outcome: Outcome) -> None:
    if outcome.verdict == "released":
        out.print(f"account {_name(ref)}: released, folded up to {outcome.position}")
        return
    out.print(f"account {_name(ref)}: {outcome.verdict}")
    if outcome.letter is not None:
        _print_letter(outcome.letter)
    raise typer.Exit(1)
