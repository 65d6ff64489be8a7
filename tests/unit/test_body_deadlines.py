"""api/limits.py: one timer watches every body read of a process. A read past its deadline ends in RequestTimedOut
(within a tick of it), a read that completes in time is untouched, and a cancellation from elsewhere stays a
cancellation."""

import asyncio
from typing import Any

import pytest

from api.limits import BoundedBody, Deadlines
from domain.errors import RequestTimedOut

TIMEOUT = 0.3


async def never() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def ignore(_: Any) -> None:
    return None


def body(receive: Any, deadlines: Deadlines) -> BoundedBody:
    return BoundedBody(receive, ignore, None, 1 << 20, deadlines)


async def test_a_read_past_its_deadline_times_out_within_a_tick() -> None:
    deadlines = Deadlines(TIMEOUT)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RequestTimedOut):
        await body(never, deadlines).receive()
    assert TIMEOUT <= loop.time() - started < TIMEOUT + 2 * deadlines.tick + 0.5
    assert deadlines.waiting == {}


async def test_reads_in_time_are_answered_and_leave_nothing_behind() -> None:
    deadlines = Deadlines(TIMEOUT)
    arrived = asyncio.Event()

    async def later() -> dict[str, Any]:
        await arrived.wait()
        return {"type": "http.request", "body": b"{}", "more_body": False}

    reads = [asyncio.ensure_future(body(later, deadlines).receive()) for _ in range(10)]
    slow = asyncio.ensure_future(body(never, deadlines).receive())
    await asyncio.sleep(0)
    assert len(deadlines.waiting) == 11
    arrived.set()
    assert [m["body"] for m in await asyncio.gather(*reads)] == [b"{}"] * 10
    with pytest.raises(RequestTimedOut):
        await slow
    assert deadlines.waiting == {}


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines(TIMEOUT)
    read = asyncio.ensure_future(body(never, deadlines).receive())
    await asyncio.sleep(0)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    assert deadlines.waiting == {}
