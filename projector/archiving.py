"""The projector's background archiver: every interval, one archive round on each partition whose projector lease
this process holds (the archive takes its own fenced lease per partition for the round)."""

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import Counter

from projector.runtime import Backoff, pause, repeat
from store.archive.archiver import Archiver

log = logging.getLogger("tally.archive")
ARCHIVED = Counter("tally_archive_rows_total", "stream entries moved into archive segments", ["partition"])
PROBLEMS = Counter("tally_archive_problems_total", "archive rounds that stopped on a problem", ["partition"])


async def archive_held_partitions(archiver: Archiver, held: Callable[[], list[int]], interval_s: float,
                                  stop: asyncio.Event) -> None:
    """Until `stop`: wait `interval_s`, then archive each held partition in turn, under the shared runtime; a
    partition's failure is logged, counted and tried again at the next interval (it never ends the loop)."""

    async def round_of_held() -> float:
        for partition in held():
            if stop.is_set():
                break
            await _archive(archiver, partition, interval_s)
        return interval_s

    await pause(stop, interval_s)
    await repeat("archiver", round_of_held, stop, Backoff(first_s=interval_s, max_s=interval_s))


async def _archive(archiver: Archiver, partition: int, interval_s: float) -> None:
    try:
        report = await archiver.run(partition)
    except Exception:
        PROBLEMS.labels(str(partition)).inc()
        log.exception("archive round failed partition=%d; trying again in %.0fs", partition, interval_s)
        return
    ARCHIVED.labels(str(partition)).inc(report.rows)
    if report.problem:
        PROBLEMS.labels(str(partition)).inc()
        log.error("archive stopped partition=%d problem=%s", partition, report.problem)
    elif report.rows or report.trimmed:
        log.info("archived partition=%d rows=%d accounts=%d trimmed=%d segments=%d", partition, report.rows,
                 report.accounts, report.trimmed, len(report.segments))
