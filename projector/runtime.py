"""The one runtime every long-lived worker runs under: a loop of turns retried with backoff, a supervisor that
starts a failed worker again, and a watch that ends the process loudly when a background task ends by itself.

Every failure is logged and counted (tally_worker_errors_total, tally_worker_restarts_total); every wait ends as
soon as `stop` is set (SIGTERM, the API shutting down), so workers give their fenced leases back (store/lease.py)
in their `finally` instead of leaving them to expire.
"""

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from projector.metrics import WORKER_ERRORS, WORKER_RESTARTS

log = logging.getLogger("tally.runtime")


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Keep what the process holds on entering (modules, classes, functions: ~100,000 objects the cyclic collector
    tracks, and what start-up built) out of the collector's walks until the block ends (`gc.freeze`, then
    `gc.unfreeze`, which hands them back as they were). Every full collection walks every tracked object: with
    them in the heap, a projector's full collections (about five per 100,000 events) took ~80 ms each and the
    collector a quarter of its CPU, a rebuild's a fifth (bench/PROFILE.md). Only the walks change: nothing the
    block allocates is kept longer; a cycle that becomes garbage among the frozen objects waits for the end."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Backoff(msgspec.Struct, frozen=True):
    """Exponential: `first_s` after the first failure in a row, doubling up to `max_s`."""

    first_s: float = 1.0
    max_s: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_s, self.first_s * 2 ** min(max(failures - 1, 0), 20)))


async def pause(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Wait `seconds`, or less when `stop` (or `wake`) is set."""
    events = [stop] if wake is None else [stop, wake]
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def repeat(worker: str, turn: Callable[[], Awaitable[float]], stop: asyncio.Event, backoff: Backoff,
                 wake: asyncio.Event | None = None, on_error: Callable[[Exception], None] | None = None) -> None:
    """Run `turn` until `stop`; it returns how long to wait before the next one (0: at once; `wake` cuts the wait
    short). A turn that raises (Redis restarting, a timeout, a bug) is logged and counted, `on_error` resets what
    the worker must forget, and the next turn comes after `backoff` (reset by a turn that succeeds)."""
    failures = 0
    while not stop.is_set():
        try:
            wait_s = await turn()
        except Exception as exc:
            failures += 1
            delay = backoff.delay(failures)
            WORKER_ERRORS.labels(worker).inc()
            log.warning("%s error #%d, retrying in %.2fs: %s: %s", worker, failures, delay, type(exc).__name__, exc,
                        exc_info=failures == 1)
            if on_error is not None:
                on_error(exc)
            await pause(stop, delay)
            continue
        failures = 0
        if wait_s > 0:
            await pause(stop, wait_s, wake)


async def supervised(name: str, work: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event,
                     restart_s: float = 1.0, max_restart_s: float = 30.0) -> None:
    """Run a whole worker until `stop`; when it fails (Redis down at start-up, a bug) or ends by itself, log it,
    count it and start it again after a backoff that doubles while it keeps failing."""
    backoff, failures = Backoff(restart_s, max_restart_s), 0
    while not stop.is_set():
        try:
            await work()
        except Exception:
            failures += 1
            log.exception("%s stopped with an error; restarting in %.1fs", name, backoff.delay(failures))
        else:
            if stop.is_set():
                return
            failures += 1
            log.error("%s ended without being stopped; restarting in %.1fs", name, backoff.delay(failures))
        WORKER_RESTARTS.labels(name).inc()
        await pause(stop, backoff.delay(failures))


def watch(tasks: Iterable[tuple[str, "asyncio.Task[None]"]], stop: asyncio.Event,
          on_failure: Callable[[str], None]) -> None:
    """No background task nobody observes: one that ends before `stop` is set (an error that escaped supervision,
    a loop that returned) is logged as critical and `on_failure(name)` ends the process."""
    for name, task in tasks:
        def done(task: "asyncio.Task[None]", name: str = name) -> None:
            if stop.is_set():
                return
            error = None if task.cancelled() else task.exception()
            log.critical("background task %s ended while the process runs (%s); stopping the process", name,
                         "cancelled" if task.cancelled() else repr(error), exc_info=error)
            on_failure(name)

        task.add_done_callback(done)

