"""What every `tally` command shares: settings loading, the error console, Redis connections."""


import typer
from redis.asyncio import Redis
from rich.console import Console

from cli.settings import Settings
from domain.errors import TallyError
from domain.identity import AccountRef
from store.keys import Keys
from store.meta import LayoutRefused, ensure_store

err = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except TallyError as exc:
        err.print(f"[red]settings:[/red] {exc.message}")
        raise typer.Exit(2) from exc


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        err.print("[red]TALLY_REDIS_URL is required[/red]")
        raise typer.Exit(2)
    return settings.redis_url


def connect(settings: Settings) -> tuple[Redis, Keys]:
    return Redis.from_url(redis_url(settings)), Keys(settings.partitions)


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
