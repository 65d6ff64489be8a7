"""In-process tally for integration tests: the real app and (optionally) the real projector on a real Redis."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from api.accounts import Clock, system_clock
from api.app import create_app
from api.auth import Principal
from api.fastpath import FastPath
from cli.components import replicated
from cli.settings import Settings
from cli.wiring import projector_companion
from domain.clock import due_events
from domain.codec import decode_account
from domain.identity import AccountRef
from store.connect import connect as open_client
from store.keys import Keys
from store.positions import is_after, text
from tests.support.components import api_config

API_KEY = "test-key"
OTHER_KEY = "other-tenant-key"
OPERATOR_KEY = "operator-key"
PRINCIPALS = {API_KEY: Principal("tenant_a", "env_a"), OTHER_KEY: Principal("tenant_b", "env_a")}
PARTITIONS = 4


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"partitions": PARTITIONS, "block_ms": 20, "lease_ttl_ms": 2000, "request_log": False}
    values.update(overrides)
    return Settings(**values)


@dataclass
class ManualClock:
    """A clock the test moves by hand: time passes only when it says so."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@asynccontextmanager
async def running_app(
    redis_url: str | None, projector: bool = True, clock: Clock = system_clock, settings: Settings | None = None,
    operator_keys: frozenset[str] = frozenset({OPERATOR_KEY}),
    fast_path: bool = True, connect: Callable[[], Redis] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to the app through ASGI, lifespan included; headers carry API_KEY. The app and the
    projector's clock both read `clock`. The store is `redis_url`'s, or whatever `connect` opens (another backend)."""
    settings = settings or make_settings()
    config = api_config(PRINCIPALS, settings.partitions, request_log=False, operator_keys=operator_keys,
                        ledger_keep=settings.ledger_keep, replicated=replicated(settings))
    companions = [projector_companion(settings, "test-projector", clock)] if projector else []
    if connect is None:
        assert redis_url is not None, "a store: redis_url or connect"
        url = redis_url
        connect = lambda: open_client(url)  # noqa: E731
    app = create_app(config, connect, clock=clock, companions=companions)
    if not fast_path:  # the hot routes through FastAPI too, to test both ways of serving them
        app.user_middleware = [m for m in app.user_middleware if m.cls is not FastPath]
    async with app.router.lifespan_context(app):
        if not fast_path:
            app.hot_first = None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tally", headers={"x-api-key": API_KEY}) as c:
            yield c


async def wait_folded(redis: Redis, ref: AccountRef, partitions: int = PARTITIONS, timeout: float = 120.0) -> None:
    """Poll until the account's snapshot has folded its whole stream (no sleeping for a fixed time)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        head: Any = await redis.xrevrange(Keys(partitions).log(ref), count=1)
        snap: Any = await redis.hget(Keys(partitions).snapshot(ref), "p")
        if not head or (snap and not is_after(head[0][0].decode(), snap.decode())):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"snapshot of {ref} did not catch up")
        await asyncio.sleep(0.01)


async def wait_settled(redis: Redis, ref: AccountRef, clock: Clock = system_clock, settings: Settings | None = None,
                       timeout: float = 120.0) -> None:
    """Poll until nothing more is appended to the account on its own: its snapshot has folded its whole stream and
    time makes nothing due for it (domain/clock.py `due_events` at `clock()`: no period to close, lot to expire or
    auto top-up for the projector's clock to append). `wait_folded` may return between the fold of usage of a past
    period and the PeriodClosed that fold made due, which the clock appends a moment later. The stream's end and
    the snapshot are read in one transaction (one slot); `settings` are the running projector's (its grace)."""
    settings = settings or make_settings()
    keys, grace = Keys(settings.partitions), timedelta(seconds=settings.period_grace_seconds)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xrevrange(keys.log(ref), count=1)
            pipe.hmget(keys.snapshot(ref), ["p", "s"])
            replies: list[Any] = await pipe.execute()
        head, (position, state) = replies
        if not head and not position:
            return  # nothing was ever appended
        folded = position and not (head and is_after(text(head[0][0]), text(position)))
        if folded and not due_events(decode_account(state), clock(), grace):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{ref} did not settle (snapshot {position!r}, stream end {head!r})")
        await asyncio.sleep(0.01)


test_settings = make_settings  # older name, kept for the suites that import it
test_settings.__test__ = False  # type: ignore[attr-defined]
