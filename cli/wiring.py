"""Builds the halves from settings: the API app and the projector loop. The only place both are imported."""

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime

import httpx
from redis.asyncio import Redis

from api.app import ApiConfig, Companion, create_app
from api.auth import Principal, parse_api_keys
from cli.settings import Settings
from projector.clock import PartitionClock, wall_clock
from projector.membership import Membership
from projector.webhooks import SenderSettings, WebhookSender
from projector.worker import Projector, ProjectorSettings
from store.eventstore import EventStore
from store.keys import Keys
from store.meta import ensure_partitions
from store.projection import Projection
from store.webhooks import Webhooks


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def api_keys(settings: Settings, extra_key: str | None, demo: Principal | None = None) -> dict[str, Principal]:
    keys = parse_api_keys(settings.api_keys)
    if extra_key:
        keys[extra_key] = demo or Principal("tenant_default", "env_default")
    return keys


def build_app(settings: Settings, connect: Callable[[], Redis], keys: dict[str, Principal],
              companions: list[Companion] | None = None) -> object:
    config = ApiConfig(api_keys=keys, keys=Keys(settings.partitions), dedup_ttl_seconds=settings.dedup_ttl_seconds,
                       max_future_skew_seconds=settings.max_future_skew_seconds, request_log=settings.request_log)
    return create_app(config, connect, companions=companions or [])


def projector_companion(settings: Settings, holder: str, now: Callable[[], datetime] = wall_clock) -> Companion:
    async def run(redis: Redis, stop: asyncio.Event) -> None:
        await run_projector(redis, settings, stop, holder, now)

    return run


def webhooks_companion(settings: Settings, holder: str) -> Companion:
    async def run(redis: Redis, stop: asyncio.Event) -> None:
        await run_webhooks(redis, settings, stop, holder)

    return run


async def run_projector(
    redis: Redis, settings: Settings, stop: asyncio.Event, holder: str, now: Callable[[], datetime] = wall_clock
) -> None:
    """The projector loop; `now` is its clock's time (period closes, expiries), injected by tests."""
    keys = Keys(settings.partitions)
    await ensure_partitions(redis, keys)
    projector_settings = ProjectorSettings(
        holder=holder, batch_size=settings.batch_size, block_ms=settings.block_ms, lease_ttl_ms=settings.lease_ttl_ms,
        period_grace_seconds=settings.period_grace_seconds, clock_interval_ms=settings.clock_interval_ms,
        trim_every_batches=settings.trim_every_batches,
    )
    membership = Membership(redis, keys, holder, ttl_ms=settings.lease_ttl_ms * 2)
    projection = Projection(redis, keys)
    store = EventStore(redis, keys, settings.dedup_ttl_seconds)
    clock = PartitionClock(store, projection, projector_settings.grace, now)
    await Projector(projection, membership, projector_settings, clock).run(stop)


async def run_webhooks(redis: Redis, settings: Settings, stop: asyncio.Event, holder: str) -> None:
    keys = Keys(settings.partitions)
    await ensure_partitions(redis, keys)
    sender_settings = SenderSettings(holder=holder, max_attempts=settings.webhook_max_attempts,
                                     backoff_base_ms=settings.webhook_backoff_base_ms,
                                     timeout_ms=settings.webhook_timeout_ms)
    async with httpx.AsyncClient() as client:
        await WebhookSender(Webhooks(redis, keys), sender_settings, client).run(stop)
