"""`tally archive`: move folded, old history of the customer streams into Parquet segments, by hand."""

import asyncio
import os
from typing import Annotated

import typer
from rich.console import Console

from cli.common import connect, err, load_settings
from cli.components import archive_settings
from store.archive.archiver import Archiver, RoundReport
from store.archive.objects import open_files

commands = typer.Typer()
STOP_AT = "TALLY_TEST_ARCHIVE_STOP_AT"  # fault injection, for the tests only


@commands.command()
def archive(
    partition: Annotated[int | None, typer.Option(min=0, help="archive this partition only")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be archived; change nothing")] = False,
) -> None:
    """Archive entries every projection has folded and older than TALLY_ARCHIVE_AFTER into Parquet segments
    (TALLY_ARCHIVE_URL), then trim them from Redis; finishes what an interrupted run left. Exit 1 on a problem."""
    settings = load_settings()
    if partition is not None and partition >= settings.partitions:
        err.print(f"[red]--partition must be below TALLY_PARTITIONS ({settings.partitions})[/red]")
        raise typer.Exit(2)

    async def main() -> list[RoundReport]:
        redis, keys = connect(settings)
        try:
            archiver = Archiver(redis, keys, open_files(settings.archive_location),
                                archive_settings(settings, f"archive:{os.getpid()}", os.environ.get(STOP_AT, "")))
            chosen = range(settings.partitions) if partition is None else [partition]
            return [await archiver.run(p, dry_run) for p in chosen]
        finally:
            await redis.aclose()

    reports = asyncio.run(main())
    out = Console(soft_wrap=True, highlight=False)
    verb = "would archive" if dry_run else "archived"
    for report in reports:
        if report.rows or report.trimmed or report.finished or report.problem:
            segments = ", ".join(s.url for s in report.segments) or "-"
            out.print(f"partition {report.partition}: {verb} rows={report.rows} accounts={report.accounts} "
                      f"trimmed={report.trimmed} finished={report.finished or '-'} segments={segments}", markup=False)
        if report.problem:
            out.print(f"PROBLEM partition {report.partition}: {report.problem}", markup=False)
    out.print(f"archive {'dry run' if dry_run else 'done'}: partitions={len(reports)} "
              f"rows={sum(r.rows for r in reports)} trimmed={sum(r.trimmed for r in reports)} "
              f"problems={sum(1 for r in reports if r.problem)}")
    if any(r.problem for r in reports):
        raise typer.Exit(1)
