"""The shared worker runtime: a failing turn is retried with backoff and counted, and a background task that ends
by itself is reported (the app then ends the process) while one told to stop is not."""

import asyncio

from prometheus_client import REGISTRY

from projector.runtime import Backoff, repeat, watch


def errors(worker: str) -> float:
    return REGISTRY.get_sample_value("tally_worker_errors_total", {"worker": worker}) or 0.0


def test_backoff_doubles_from_its_first_delay_up_to_its_cap() -> None:
    assert [Backoff(0.5, 3.0).delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_a_turn_that_fails_is_counted_and_tried_again_until_one_succeeds() -> None:
    stop = asyncio.Event()
    turns: list[int] = []
    forgotten: list[str] = []

    async def turn() -> float:
        turns.append(len(turns))
        if len(turns) <= 2:
            raise ConnectionError("Redis is down")
        stop.set()
        return 0.0

    before = errors("test-repeat")
    await asyncio.wait_for(repeat("test-repeat", turn, stop, Backoff(0.001, 0.01),
                                  on_error=lambda exc: forgotten.append(str(exc))), 5)
    assert len(turns) == 3 and forgotten == ["Redis is down"] * 2
    assert errors("test-repeat") - before == 2


async def test_a_background_task_that_ends_by_itself_is_reported_and_one_told_to_stop_is_not() -> None:
    stop = asyncio.Event()
    failed: list[str] = []

    async def broken() -> None:
        raise RuntimeError("a bug that escaped supervision")

    async def stops() -> None:
        await stop.wait()

    tasks = [("broken", asyncio.create_task(broken())), ("stops", asyncio.create_task(stops()))]
    watch(tasks, stop, failed.append)
    await asyncio.gather(tasks[0][1], return_exceptions=True)
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert failed == ["broken"]
    stop.set()
    await tasks[1][1]
    await asyncio.sleep(0)
    assert failed == ["broken"]
