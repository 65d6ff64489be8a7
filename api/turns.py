"""Per-account turns: in one process, the commands for one account wait in one line and are served a batch at a
time, so the process never races itself on an account; what a batch could not finish goes back to the front."""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key", bound=Hashable)


class Waiting(Generic[Item, Result]):
    """One command in line: what it asks, until when it may wait, how often it lost a race, and its reply."""

    __slots__ = ("deadline", "item", "losses", "reply")

    def __init__(self, item: Item, deadline: float) -> None:
        self.item, self.deadline, self.losses = item, deadline, 0
        self.reply: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

    @property
    def answered(self) -> bool:
        return self.reply.done()

    def answer(self, result: Result) -> None:
        if not self.reply.done():
            self.reply.set_result(result)

    def fail(self, error: BaseException) -> None:
        if not self.reply.done():
            self.reply.set_exception(error)


Batch = list[Waiting[Item, Result]]
Serve = Callable[[Key, Batch[Item, Result]], Awaitable[Batch[Item, Result]]]


class Turns(Generic[Key, Item, Result]):
    """`serve(key, batch)` answers what it can of a batch and returns the rest, to be served again first.

    A batch is at most `limit` commands in arrival order; it ends before a command whose `token` (when not
    None) is already in it, so two commands with one idempotency key never share a batch."""

    def __init__(self, serve: Serve[Key, Item, Result], token: Callable[[Item], Hashable | None],
                 limit: int = 64) -> None:
        self._serve, self._token, self._limit = serve, token, limit
        self._lines: dict[Key, deque[Waiting[Item, Result]]] = {}
        self._servers: set[asyncio.Task[None]] = set()

    async def wait_turn(self, key: Key, waiting: Waiting[Item, Result]) -> Result:
        line = self._lines.get(key)
        if line is None:
            self._lines[key] = deque([waiting])
            server = asyncio.create_task(self._serve_line(key))
            self._servers.add(server)
            server.add_done_callback(self._servers.discard)
        else:
            line.append(waiting)
        return await waiting.reply

    async def _serve_line(self, key: Key) -> None:
        line = self._lines[key]
        try:
            while line:
                batch = self._take(line)
                if not batch:
                    continue
                try:
                    again = await self._serve(key, batch)
                except Exception as exc:  # a store error: every unanswered command of the batch gets it
                    for waiting in batch:
                        waiting.fail(exc)
                    continue
                line.extendleft(reversed(again))
        finally:
            del self._lines[key]
            for waiting in line:  # only when cancelled (shutdown): nobody serves them any more
                waiting.reply.cancel()

    def _take(self, line: deque[Waiting[Item, Result]]) -> Batch[Item, Result]:
        batch: Batch[Item, Result] = []
        tokens: set[Hashable] = set()
        while line and len(batch) < self._limit:
            waiting = line[0]
            token = self._token(waiting.item)
            if token is not None and token in tokens:
                break
            line.popleft()
            if waiting.answered:  # its caller went away (cancelled) before its turn
                continue
            batch.append(waiting)
            if token is not None:
                tokens.add(token)
        return batch
