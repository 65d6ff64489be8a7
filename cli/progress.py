"""Replay progress: a rich bar with events/s and ETA on a terminal, plain lines otherwise."""

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

PLAIN_EVERY_S = 2.0


@contextmanager
def replay_progress() -> Iterator[Callable[[int, int], None]]:
    if sys.stderr.isatty():
        with Progress(TextColumn("replay"), BarColumn(), TaskProgressColumn(),
                      TextColumn("{task.completed:,.0f}/{task.total:,.0f} events"),
                      TextColumn("{task.fields[rate]:,.0f} events/s"), TimeRemainingColumn(), transient=False) as bar:
            task = bar.add_task("replay", total=None, rate=0.0)
            started = time.perf_counter()

            def update(done: int, total: int) -> None:
                rate = done / max(1e-9, time.perf_counter() - started)
                bar.update(task, completed=done, total=total, rate=rate)

            yield update
        return
    started = last = time.perf_counter()

    def plain(done: int, total: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= PLAIN_EVERY_S or done == total:
            last = now
            rate = done / max(1e-9, now - started)
            eta = (total - done) / rate if rate else 0.0
            print(f"replay {done}/{total} events {rate:,.0f} events/s eta {eta:.0f}s", file=sys.stderr, flush=True)

    yield plain
