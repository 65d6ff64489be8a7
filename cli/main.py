"""The `tally` command: parses flags, loads settings once, and starts the requested half (or both)."""

import asyncio
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import typer
import uvicorn
from prometheus_client import start_http_server
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from api.auth import Principal
from cli import wiring
from cli.progress import replay_progress
from cli.settings import Settings
from cli.stores import embedded_store
from domain.errors import TallyError
from domain.identity import AccountRef
from projector import operate
from projector.replay import Replayer, ReplayReport
from projector.verify import VerifyReport
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Lag, Projection

app = typer.Typer(help="tally: exact, instant, provable wallet balances on Redis Streams.", no_args_is_help=True)
err = Console(stderr=True)
DEMO_KEY = "tally-dev-key"
DEMO_PRINCIPAL = Principal("tenant_dev", "env_dev")

Port = Annotated[int, typer.Option(help="port to listen on")]
Host = Annotated[str, typer.Option(help="address to bind")]
ApiKey = Annotated[str | None, typer.Option(help="an extra API key (bound to tenant_dev/env_dev)")]


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except TallyError as exc:
        err.print(f"[red]settings:[/red] {exc.message}")
        raise typer.Exit(2) from exc


def _serve(asgi: Any, host: str, port: int) -> None:
    uvicorn.run(asgi, host=host, port=port, log_level="warning", access_log=False)


@app.command()
def dev(port: Port = 8080, host: Host = "127.0.0.1", api_key: ApiKey = None) -> None:
    """API, projector and webhook sender in one process, on TALLY_REDIS_URL, a local redis-server, or fakeredis."""
    settings = _settings()
    wiring.configure_logging(settings)
    key = api_key or DEMO_KEY
    keys = wiring.api_keys(settings, key, DEMO_PRINCIPAL)
    with embedded_store(settings.redis_url, settings.data_dir, lambda m: err.print(f"[yellow]{m}[/yellow]")) as connect:
        companions = [wiring.projector_companion(settings, wiring.holder_name()),
                      wiring.webhooks_companion(settings, wiring.holder_name())]
        asgi = wiring.build_app(settings, connect, keys, companions)
        err.print(f"tally dev on http://{host}:{port}/v1  —  demo API key: [bold]{key}[/bold] "
                  f"(tenant {DEMO_PRINCIPAL.tenant_id}, environment {DEMO_PRINCIPAL.environment_id})")
        _serve(asgi, host, port)


def _redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        err.print("[red]TALLY_REDIS_URL is required[/red]")
        raise typer.Exit(2)
    return settings.redis_url


@app.command()
def api(port: Port = 8080, host: Host = "0.0.0.0", api_key: ApiKey = None) -> None:
    """The HTTP API alone, against TALLY_REDIS_URL."""
    settings = _settings()
    wiring.configure_logging(settings)
    url = _redis_url(settings)
    keys = wiring.api_keys(settings, api_key, DEMO_PRINCIPAL)
    if not keys:
        err.print("[red]no API keys: set TALLY_API_KEYS=key:tenant:environment or pass --api-key[/red]")
        raise typer.Exit(2)
    _serve(wiring.build_app(settings, lambda: Redis.from_url(url), keys), host, port)


MetricsPort = Annotated[int | None, typer.Option(help="serve Prometheus /metrics on this port")]


@app.command()
def projector(
    holder: Annotated[str | None, typer.Option(help="name of this process in leases")] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """The projector alone: folds partition feeds into snapshots. SIGTERM finishes the batch and exits."""
    settings = _settings()
    wiring.configure_logging(settings)
    if metrics_port:
        start_http_server(metrics_port)
    _run_until_signal(settings, wiring.run_projector, holder or wiring.holder_name())


def _run_until_signal(settings: Settings, worker: Any, holder: str) -> None:
    url = _redis_url(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        redis = Redis.from_url(url)
        try:
            await worker(redis, settings, stop, holder)
        finally:
            await redis.aclose()

    asyncio.run(main())


@app.command()
def webhooks(
    holder: Annotated[str | None, typer.Option(help="name of this process in the sender lease")] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Deliver the alerts stream (and wallet.transaction.created) to each tenant's endpoints, signed, with retries."""
    settings = _settings()
    wiring.configure_logging(settings)
    if metrics_port:
        start_http_server(metrics_port)
    _run_until_signal(settings, wiring.run_webhooks, holder or wiring.holder_name())


def _connect(settings: Settings) -> tuple[Redis, Keys]:
    return Redis.from_url(_redis_url(settings)), Keys(settings.partitions)


@app.command()
def lag() -> None:
    """Per partition: checkpoint, feed head, events behind, age of the oldest unfolded event, lease holder."""
    settings = _settings()

    async def main() -> list[Lag]:
        redis, keys = _connect(settings)
        try:
            return await operate.lag_table(Projection(redis, keys))
        finally:
            await redis.aclose()

    rows = asyncio.run(main())
    table = Table("partition", "checkpoint", "feed head", "behind", "oldest unfolded age", "lease holder")
    for row in rows:
        age = operate.age_ms(row)
        table.add_row(str(row.partition), row.checkpoint, row.head, str(row.behind),
                      "-" if age is None else f"{age} ms", row.holder or "-")
    Console().print(table)


@app.command()
def verify(
    customer: Annotated[str | None, typer.Option(help="verify one customer (with --tenant and --environment)")] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Fold every account (or one) from zero and compare with its snapshot; exit 1 on any drift."""
    settings = _settings()
    ref = _one_customer(customer, tenant, environment)

    async def main() -> VerifyReport:
        redis, keys = _connect(settings)
        try:
            store = EventStore(redis, keys, settings.dedup_ttl_seconds)
            return await operate.verify(store, Projection(redis, keys), ref)
        finally:
            await redis.aclose()

    report = asyncio.run(main())
    for drift in report.drifts:
        Console().print(f"DRIFT {drift.ref.tenant_id}/{drift.ref.environment_id}/{drift.ref.customer_id} "
                        f"{drift.field}: snapshot={drift.snapshot} log={drift.log}")
    Console().print(f"verified accounts={report.accounts} events={report.events} drifts={len(report.drifts)} "
                    f"behind={len(report.behind)}")
    if report.drifts:
        raise typer.Exit(1)


@app.command()
def replay(
    customer: Annotated[str | None, typer.Option(help="rebuild one customer (with --tenant and --environment)")] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="fold and compare with the live snapshots; change nothing")]
    = False,
) -> None:
    """Rebuild projections from the streams into a new generation, then switch reads to it (blue/green)."""
    settings = _settings()
    ref = _one_customer(customer, tenant, environment)

    async def main(progress: Callable[[int, int], None]) -> ReplayReport:
        redis, keys = _connect(settings)
        try:
            replayer = Replayer(redis, keys, timedelta(seconds=settings.period_grace_seconds),
                                settings.dedup_ttl_seconds)
            if ref is not None:
                return await replayer.rebuild_one(ref, dry_run)
            return await replayer.rebuild_all(dry_run, progress)
        finally:
            await redis.aclose()

    with replay_progress() as progress:
        report = asyncio.run(main(progress))
    for drift in report.drifts:
        Console().print(f"DRIFT {drift.ref.customer_id} {drift.field}: snapshot={drift.snapshot} log={drift.log}")
    action = "compared" if dry_run else ("switched to" if report.switched else "built")
    Console().print(f"replay {action} generation {report.generation}: accounts={report.accounts} "
                    f"events={report.events} seconds={report.seconds:.2f} events/s={report.rate:,.0f} "
                    f"drifts={len(report.drifts)}")
    if report.drifts:
        raise typer.Exit(1)


def _one_customer(customer: str | None, tenant: str | None, environment: str | None) -> AccountRef | None:
    if not customer:
        return None
    if not tenant or not environment:
        err.print("[red]--customer needs --tenant and --environment[/red]")
        raise typer.Exit(2)
    return AccountRef(tenant, environment, customer)


def run() -> None:
    sys.exit(app())
