"""What every `tally` command shares: settings loading, the error console, Redis connections."""

import os

import msgspec
import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console

from cli.settings import Settings
from cli.stores import running_dev_store
from domain.errors import TallyError
from domain.identity import AccountRef
from store.connect import connect as open_client
from store.keys import Keys
from store.meta import LayoutRefused, ensure_store, partitions_for

err = Console(stderr=True)


def load_settings(resolve: bool = True) -> Settings:
    """TALLY_* settings; with `resolve`, the partition count settled against the store (`resolved`)."""
    try:
        settings = Settings.from_env()
    except TallyError as exc:
        err.print(f"[red]settings:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    return resolved(settings, settings.redis_url or running_dev_store(settings.data_dir)) if resolve else settings


def resolved(settings: Settings, url: str | None) -> Settings:
    """With TALLY_PARTITIONS unset: the count the store at `url` records, or the default for a new store."""
    if settings.partitions:
        return settings
    try:
        partitions = partitions_for(url, settings.partitions)
    except RedisError as exc:
        err.print(f"[red]store:[/red] cannot read the store's partition count at {url}: {exc}")
        raise typer.Exit(2) from exc
    return msgspec.structs.replace(settings, partitions=partitions)


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        err.print("[red]TALLY_REDIS_URL is required[/red]")
        raise typer.Exit(2)
    return settings.redis_url


def operator_url(settings: Settings) -> str:
    """TALLY_REDIS_URL, or else the redis-server a running `tally dev` started in TALLY_DATA_DIR."""
    if settings.redis_url:
        return settings.redis_url
    url = running_dev_store(settings.data_dir)
    if url is None:
        err.print(f"[red]TALLY_REDIS_URL is not set and no running `tally dev` recorded a store in "
                  f"{os.path.abspath(settings.data_dir)} (TALLY_DATA_DIR): set TALLY_REDIS_URL, or start "
                  f"`tally dev` here (with redis-server on PATH)[/red]")
        raise typer.Exit(2)
    err.print(f"store: the running tally dev's redis-server at {url}")
    return url


def connect(settings: Settings) -> tuple[Redis, Keys]:
    """The store an operator command works on: TALLY_REDIS_URL, or a running `tally dev`'s."""
    return open_client(operator_url(settings)), Keys(settings.partitions)


async def check_store(redis: Redis, keys: Keys) -> None:
    """Refuse (exit 2, saying what to do) a store this tally must not read: another layout, other partitions."""
    try:
        await ensure_store(redis, keys)
    except LayoutRefused as exc:
        err.print(f"[red]store:[/red] {exc}")
        raise typer.Exit(2) from exc
    except TallyError as exc:
        err.print(f"[red]store:[/red] {exc.message}")
        raise typer.Exit(2) from exc


def one_customer(customer: str | None, tenant: str | None, environment: str | None) -> AccountRef | None:
    if not customer:
        return None
    if not tenant or not environment:
        err.print("[red]--customer needs --tenant and --environment[/red]")
        raise typer.Exit(2)
    return AccountRef(tenant, environment, customer)
