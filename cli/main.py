"""The `tally` command: parses flags, loads settings once, and starts the requested half (or all of them)."""

import asyncio
import os
import signal
import socket
import sys
from typing import Annotated, Any

import typer
from prometheus_client import start_http_server

from api.auth import Principal
from cli import wiring
from cli.archive import commands as archive_commands
from cli.common import err, load_settings, redis_url, resolved
from cli.components import transport_bounds
from cli.dlq import dlq
from cli.ops import ops
from cli.retention import retention_app
from cli.serve import serve
from cli.settings import Settings
from cli.stores import embedded_store, running_dev_store
from cli.workers import Supervisor, listening_socket
from store.connect import connect

app = typer.Typer(help="tally: exact, instant, provable wallet balances on Redis Streams.", no_args_is_help=True)
DEMO_KEY = "tally-dev-key"
DEMO_PRINCIPAL = Principal("tenant_dev", "env_dev")

Port = Annotated[int, typer.Option(help="port to listen on")]
Host = Annotated[str, typer.Option(help="address to bind")]
ApiKey = Annotated[str | None, typer.Option(help="an extra API key (bound to tenant_dev/env_dev)")]


def _serve(asgi: Any, host: str, port: int, settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; exit 1 when a background task (projector, sender, …) ended the process."""
    serve(asgi, host, port, transport_bounds(settings), sockets)
    failed = getattr(asgi.state, "failed_task", None)
    if failed:
        err.print(f"[red]{failed} failed and stopped tally; see the log above[/red]")
        raise typer.Exit(1)


@app.command()
def dev(port: Port = 8080, host: Host = "127.0.0.1", api_key: ApiKey = None) -> None:
    """API, projector and webhook sender in one process, on TALLY_REDIS_URL, a local redis-server, or fakeredis."""
    settings = wiring.dev_settings(load_settings(resolve=False), os.environ)
    wiring.configure_logging(settings)
    key = api_key or DEMO_KEY
    keys = wiring.api_keys(settings, key, DEMO_PRINCIPAL)
    with embedded_store(settings.redis_url, settings.data_dir, lambda m: err.print(f"[yellow]{m}[/yellow]")) as connect:
        settings = resolved(settings, settings.redis_url or running_dev_store(settings.data_dir))
        companions = [wiring.projector_companion(settings, wiring.holder_name()),
                      wiring.webhooks_companion(settings, wiring.holder_name())]
        asgi = wiring.build_app(settings, connect, keys, companions)
        err.print(f"tally dev on http://{host}:{port}/v1  —  demo API key: [bold]{key}[/bold] "
                  f"(tenant {DEMO_PRINCIPAL.tenant_id}, environment {DEMO_PRINCIPAL.environment_id})")
        _serve(asgi, host, port, settings)




Workers = Annotated[int, typer.Option(min=1, max=64, help="API processes accepting on the one port (cli/workers.py)")]


@app.command()
def api(port: Port = 8080, host: Host = "127.0.0.1", api_key: ApiKey = None, workers: Workers = 1) -> None:
    """The HTTP API alone, against TALLY_REDIS_URL (loopback unless --host says otherwise)."""
    settings = load_settings()
    wiring.configure_logging(settings)
    url = redis_url(settings)
    keys = wiring.api_keys(settings, api_key, DEMO_PRINCIPAL)
    if not keys:
        err.print("[red]no API keys: set TALLY_API_KEYS=key:tenant:environment or pass --api-key[/red]")
        raise typer.Exit(2)
    asgi = wiring.build_app(settings, lambda: connect(url), keys)
    if workers == 1:
        _serve(asgi, host, port, settings)
        return
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        err.print(f"[red]cannot listen on {host}:{port}: {exc}[/red]")
        raise typer.Exit(2) from exc
    code = Supervisor(workers, sock, lambda bound: _serve(asgi, host, port, settings, [bound])).run()
    raise typer.Exit(code)


MetricsPort = Annotated[int | None, typer.Option(help="serve Prometheus /metrics on this port")]
MetricsHost = Annotated[str, typer.Option(help="address the metrics port binds (0.0.0.0: every interface)")]


@app.command()
def projector(
    holder: Annotated[str | None, typer.Option(help="name of this process in leases")] = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """The projector alone: folds partition feeds into snapshots. SIGTERM finishes the batch and exits."""
    _run_until_signal(wiring.run_projector, holder, metrics_port, metrics_host)


def _run_until_signal(worker: Any, holder: str | None, metrics_port: int | None, metrics_host: str) -> None:
    """Load settings, serve metrics if asked, and run `worker` until SIGTERM or SIGINT."""
    settings = load_settings()
    wiring.configure_logging(settings)
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host)
    url = redis_url(settings)
    name = holder or wiring.holder_name()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        redis = connect(url)
        try:
            await worker(redis, settings, stop, name)
        finally:
            await redis.aclose()

    asyncio.run(main())


@app.command()
def webhooks(
    holder: Annotated[str | None, typer.Option(help="name of this process in the sender lease")] = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Deliver the alerts stream (and wallet.transaction.created) to each tenant's endpoints, signed, with retries."""
    _run_until_signal(wiring.run_webhooks, holder, metrics_port, metrics_host)


app.registered_commands.extend(ops.registered_commands)
app.registered_commands.extend(archive_commands.registered_commands)
app.registered_commands.extend(retention_app.registered_commands)
app.add_typer(dlq, name="dlq")


def run() -> None:
    sys.exit(app())
