"""The FastAPI application: clients opened in the lifespan, routes, error table, OpenAPI with msgspec schemas."""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import msgspec
from fastapi import Depends, FastAPI
from redis.asyncio import Redis

from api import (
    admin,
    asof,
    customer_directory,
    customers,
    events,
    health,
    metrics,
    openapi,
    prices,
    wallet_search,
    wallets,
    webhooks,
)
from api.accounts import Accounts, Clock, system_clock
from api.auth import Principal
from api.errors import install_error_handlers
from api.fastpath import FastPath
from api.limits import BodyBounds, BodyLimits
from api.query import declared_query_only
from api.requestlog import RequestLog
from api.verifyjobs import VerifyJobs
from store.eventstore import EventStore
from store.generation import follow_generation, live_generation
from store.keys import Keys
from store.meta import ensure_store

Companion = Callable[[Redis, asyncio.Event], Coroutine[Any, Any, None]]


class ApiConfig(msgspec.Struct, frozen=True, kw_only=True):
    api_keys: dict[str, Principal]
    keys: Keys
    dedup_ttl_seconds: int = 35 * 24 * 3600
    max_future_skew_seconds: int = 300
    request_log: bool = True
    webhook_allow_private: bool = False
    body: BodyBounds = BodyBounds()
    operator_keys: frozenset[str] = frozenset()
    ledger_keep: int = 1000  # the projectors' TALLY_LEDGER_KEEP (verify jobs compare the ledger Redis keeps)


def create_app(
    config: ApiConfig, connect: Callable[[], Redis], clock: Clock = system_clock,
    companions: Sequence[Companion] = (),
) -> FastAPI:
    """`connect` opens the Redis client at start-up; `companions` run beside the API (the embedded projector)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect()
        await ensure_store(redis, config.keys)
        app.state.redis = redis
        app.state.api_keys = config.api_keys
        app.state.webhook_allow_private = config.webhook_allow_private
        app.state.operator_keys = config.operator_keys
        app.state.max_future_skew = timedelta(seconds=config.max_future_skew_seconds)
        store = EventStore(redis, config.keys, config.dedup_ttl_seconds)
        generation = await live_generation(redis, config.keys)
        store.use_generation(generation)
        app.state.accounts = Accounts(store, clock)
        app.state.verify_jobs = jobs = VerifyJobs(connect, config.keys, config.dedup_ttl_seconds, config.ledger_keep)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(companion(redis, stop)) for companion in companions]
        tasks.append(asyncio.create_task(
            follow_generation(redis, config.keys, generation, store.use_generation, stop)
        ))
        try:
            yield
        finally:
            stop.set()
            await jobs.close()
            await asyncio.gather(*tasks, return_exceptions=True)
            await redis.aclose()

    app = FastAPI(title="tally", version="0.1.0", lifespan=lifespan, dependencies=[Depends(declared_query_only)],
                  description="Exact, instant, provable wallet balances; Flexprice-compatible under /v1.")
    app.include_router(wallet_search.router)  # first: /customers/wallets before /customers/{customer_id}
    app.include_router(customer_directory.router)  # then /customers/external/{id} before /customers/{id}/...
    app.include_router(wallets.router)
    app.include_router(asof.router)
    app.include_router(events.router)
    app.include_router(prices.router)
    app.include_router(customers.router)
    app.include_router(webhooks.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    install_error_handlers(app)
    _document_schemas(app)
    app.add_middleware(FastPath)
    app.add_middleware(BodyLimits, bounds=config.body)
    if config.request_log:
        app.add_middleware(RequestLog)
    return app


def _document_schemas(app: FastAPI) -> None:
    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.openapi_document(app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
