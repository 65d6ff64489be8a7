"""Builds the halves from settings: the API app and the projector loop. The only place both are imported."""

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from datetime import datetime

import msgspec
from fastapi import FastAPI
from redis.asyncio import Redis

from api.app import Companion, create_app
from api.auth import Principal, parse_api_keys
from cli.components import (
    api_config,
    archive_settings,
    membership_ttl_ms,
    projector_settings,
    replicated,
    retention_settings,
    sender_settings,
)
from cli.settings import Settings
from cli.stores import settings_advice
from projector.archiving import archive_held_partitions
from projector.clock import PartitionClock, wall_clock
from projector.membership import Membership
from projector.outbound import webhook_client
from projector.retention import PartitionRetention
from projector.runtime import heap_frozen, supervised
from projector.webhooks import WebhookSender
from projector.worker import Projector
from store.archive.archiver import Archiver
from store.archive.objects import open_files
from store.eventstore import EventStore
from store.keys import Keys
from store.meta import ensure_store
from store.node_links import NodeLinks
from store.projection import Projection
from store.retention import Retention
from store.webhooks import Webhooks

log = logging.getLogger("tally.wiring")

def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


def dev_settings(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """`tally dev` delivers webhooks to local receivers unless TALLY_WEBHOOK_ALLOW_PRIVATE says otherwise, and
    archives after 10 minutes, every minute (into <data dir>/archive), unless TALLY_ARCHIVE_* say otherwise."""
    if "TALLY_WEBHOOK_ALLOW_PRIVATE" not in environ:
        settings = msgspec.structs.replace(settings, webhook_allow_private=True)
    if "TALLY_ARCHIVE_AFTER" not in environ:
        settings = msgspec.structs.replace(settings, archive_after="10m")
    if "TALLY_ARCHIVE_INTERVAL_SECONDS" not in environ:
        settings = msgspec.structs.replace(settings, archive_interval_seconds=60)
    return settings


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def api_keys(settings: Settings, extra_key: str | None, demo: Principal | None = None) -> dict[str, Principal]:
    keys = parse_api_keys(settings.api_keys)
    if extra_key:
        keys[extra_key] = demo or Principal("tenant_default", "env_default")
    return keys


def build_app(settings: Settings, connect: Callable[[], Redis], keys: dict[str, Principal],
              companions: list[Companion] | None = None) -> FastAPI:
    return create_app(api_config(settings, keys), connect, companions=companions or [])


def projector_companion(settings: Settings, holder: str, now: Callable[[], datetime] = wall_clock) -> Companion:
    async def run(redis: Redis, stop: asyncio.Event) -> None:
        await supervised("projector", lambda: run_projector(redis, settings, stop, holder, now), stop)

    return run


def webhooks_companion(settings: Settings, holder: str) -> Companion:
    async def run(redis: Redis, stop: asyncio.Event) -> None:
        await supervised("webhooks", lambda: run_webhooks(redis, settings, stop, holder), stop)

    return run


async def run_projector(
    redis: Redis, settings: Settings, stop: asyncio.Event, holder: str, now: Callable[[], datetime] = wall_clock
) -> None:
    """The projector loop; `now` is its clock's time (period closes, expiries), injected by tests."""
    keys = Keys(settings.partitions)
    await ensure_store(redis, keys)
    for advice in await settings_advice(redis):
        log.warning("%s", advice)
    worker_settings = projector_settings(settings, holder)
    membership = Membership(redis, keys, holder, ttl_ms=membership_ttl_ms(settings))
    projection = Projection(redis, keys, settings.ledger_keep)
    links = projection.scripts.commit.call_links = NodeLinks.of(redis)  # the commits, over the store's own connections
    store = EventStore(redis, keys, settings.dedup_ttl_seconds, replicated=replicated(settings))
    await store.follow_dedup_layout()
    clock = PartitionClock(store, projection, worker_settings.grace, now)
    retention = PartitionRetention(Retention(redis, keys), retention_settings(settings), now)
    projector = Projector(projection, membership, worker_settings, clock, retention)
    archiving = _background_archiver(redis, settings, keys, holder, projector, stop)
    try:
        with heap_frozen():
            await projector.run(stop)
    finally:
        if archiving is not None:
            await asyncio.gather(archiving, return_exceptions=True)
        if links is not None:
            await links.aclose()


def _background_archiver(redis: Redis, settings: Settings, keys: Keys, holder: str, projector: Projector,
                         stop: asyncio.Event) -> "asyncio.Task[None] | None":
    """Archive the partitions this projector holds every TALLY_ARCHIVE_INTERVAL_SECONDS (0: never)."""
    if settings.archive_interval_seconds <= 0:
        return None
    archiver = Archiver(redis, keys, open_files(settings.archive_location), archive_settings(settings, holder))

    def held() -> list[int]:
        return [worker.partition for worker in projector.workers if worker.lease is not None]

    return asyncio.create_task(archive_held_partitions(archiver, held, settings.archive_interval_seconds, stop))


async def run_webhooks(redis: Redis, settings: Settings, stop: asyncio.Event, holder: str) -> None:
    keys = Keys(settings.partitions)
    await ensure_store(redis, keys)
    async with webhook_client(settings.webhook_allow_private, settings.webhook_concurrency) as client:
        await WebhookSender(Webhooks(redis, keys), sender_settings(settings, holder), client).run(stop)
