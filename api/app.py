"""The FastAPI application: clients opened in the lifespan, routes, error table, OpenAPI with msgspec schemas."""

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import msgspec
from fastapi import Depends, FastAPI
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

from api import (
    admin,
    alert_log,
    asof,
    customer_directory,
    customers,
    event_reads,
    health,
    hot,
    metrics,
    openapi,
    prices,
    transactions,
    wallet_search,
    wallets,
    webhooks,
)
from api.accounts import Accounts, Clock, system_clock
from api.auth import Principal
from api.errors import install_error_handlers
from api.fastpath import FastPath, HotFirst
from api.limits import BodyBounds, BodyLimits
from api.query import declared_query_only
from api.requestlog import RequestLog
from api.verifyjobs import VerifyJobs
from projector.runtime import Backoff, repeat, watch
from store.eventstore import EventStore
from store.generation import live_generation
from store.keys import Keys
from store.meta import ensure_store
from store.node_links import NodeLinks
from store.pipelined import PipelinedConnection
from store.scripts import Replicated

Companion = Callable[[Redis, asyncio.Event], Coroutine[Any, Any, None]]
GENERATION_POLL_S = 1.0  # how soon the API reads a generation `tally replay` switched to


class ApiConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Built from the process's Settings by cli/components.py (the defaults live there, once)."""

    api_keys: dict[str, Principal]
    keys: Keys
    dedup_ttl_seconds: int
    max_future_skew_seconds: int
    request_log: bool
    webhook_allow_private: bool
    body: BodyBounds
    operator_keys: frozenset[str]
    ledger_keep: int  # the projectors' TALLY_LEDGER_KEEP (verify jobs compare the ledger Redis keeps)
    replicated: Replicated | None = None  # TALLY_WAIT_REPLICAS: appends answered once that many replicas have them


# In the order they are matched: a literal path before a template that would also match it.
ROUTERS = (
    wallet_search.router,  # /customers/wallets before /customers/{customer_id}
    customer_directory.router,  # /customers/external/{id} before /customers/{id}/...
    wallets.router, transactions.router, asof.router, hot.router, event_reads.router, prices.router,
    customers.router, webhooks.router, alert_log.router, admin.router, health.router, metrics.router,
)


class TallyApp(FastAPI):
    """FastAPI, with the hot routes answered ahead of its middleware stack once `hot_first` is set
    (api/fastpath.py `HotFirst`; the lifespan sets it when FastAPI's own telemetry is off)."""

    hot_first: HotFirst | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot_first
        if hot is not None and hot.serves(scope):
            await hot(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    config: ApiConfig, connect: Callable[[], Redis], clock: Clock = system_clock,
    companions: Sequence[Companion] = (), on_failure: Callable[[str], None] | None = None,
) -> TallyApp:
    """`connect` opens the Redis client at start-up; `companions` run beside the API (the embedded projector and
    webhook sender, each supervised by its caller). A background task that ends while the app runs calls
    `on_failure` with its name (default: app.state.failed_task is set and the process is sent SIGTERM)."""
    app = TallyApp(title="tally", version="0.1.0", dependencies=[Depends(declared_query_only)],
                  lifespan=_lifespan(config, connect, clock, companions, on_failure),
                  description="Exact, instant, provable wallet balances; Flexprice-compatible under /v1.")
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    _document_schemas(app)
    app.add_middleware(FastPath)
    app.add_middleware(BodyLimits, bounds=config.body)
    if config.request_log:
        app.add_middleware(RequestLog)
    return app


def _lifespan(
    config: ApiConfig, connect: Callable[[], Redis], clock: Clock, companions: Sequence[Companion],
    on_failure: Callable[[str], None] | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the store and its clients at start-up, run the companions and the generation follower under watch,
    and close it all at shutdown."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect()
        await ensure_store(redis, config.keys)
        app.state.redis = redis
        app.state.api_keys = config.api_keys
        app.state.webhook_allow_private = config.webhook_allow_private
        app.state.operator_keys = config.operator_keys
        app.state.max_future_skew = timedelta(seconds=config.max_future_skew_seconds)
        store = EventStore(redis, config.keys, config.dedup_ttl_seconds, replicated=config.replicated)
        await store.follow_dedup_layout()
        hot = PipelinedConnection.of(redis)  # the single append and the balance read: one call each, the hot ones
        store.scripts.append.connection = store.scripts.read.connection = hot
        calls = None if hot is not None else NodeLinks.of(redis)  # on a cluster, those single calls' connections
        store.scripts.append.call_links = store.scripts.read.call_links = calls
        bulks = NodeLinks.of(redis)  # a bulk's calls, one batch a node, apart from the single calls (none waits behind)
        store.scripts.append.links = store.scripts.append_usage.links = bulks
        generation = await live_generation(redis, config.keys)
        store.use_generation(generation)
        app.state.accounts = Accounts(store, clock)
        app.state.verify_jobs = jobs = VerifyJobs(connect, config.keys, config.dedup_ttl_seconds, config.ledger_keep)
        stop = asyncio.Event()
        tasks = [(companion.__qualname__.split(".")[0], asyncio.create_task(companion(redis, stop)))
                 for companion in companions]
        follow = _generation_follower(redis, store)
        tasks.append(("generation follower", asyncio.create_task(
            repeat("generation follower", follow, stop, Backoff(GENERATION_POLL_S, GENERATION_POLL_S)))))
        watch(tasks, stop, on_failure or _stop_process(app))
        if isinstance(app, TallyApp) and not _telemetry_on(app):
            app.hot_first = HotFirst(app, config.body, config.request_log)
        try:
            yield
        finally:
            stop.set()
            await jobs.close()
            await asyncio.gather(*(task for _, task in tasks), return_exceptions=True)
            for own in (hot, calls, bulks):
                if own is not None:
                    await own.aclose()
            await redis.aclose()

    return lifespan


def _telemetry_on(app: FastAPI) -> bool:
    """Whether FastAPI traces or measures requests itself (an OpenTelemetry provider is configured): then every
    request goes through its stack."""
    telemetry = getattr(app, "_native_telemetry", None)
    return telemetry is not None and bool(telemetry.enabled())


def _generation_follower(redis: Redis, store: EventStore) -> Callable[[], Coroutine[Any, Any, float]]:
    """A turn that points the API's reads at the live projection generation when `tally replay` switched it."""

    async def follow() -> float:
        generation = await live_generation(redis, store.keys)
        if generation != store.keys.generation:
            store.use_generation(generation)
        return GENERATION_POLL_S

    return follow


def _stop_process(app: FastAPI) -> Callable[[str], None]:
    """End the process loudly: uvicorn shuts down on SIGTERM, and `tally dev` then exits 1 naming the task."""

    def stop_process(name: str) -> None:
        app.state.failed_task = name
        signal.raise_signal(signal.SIGTERM)

    return stop_process


def _document_schemas(app: FastAPI) -> None:
    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.openapi_document(app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
