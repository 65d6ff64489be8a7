"""A SIGTERM that reaches a server before uvicorn takes its signals (an API worker whose parent is killed while it
starts) still stops it: the process serves nothing and returns, instead of running on unseen (orphaned, holding
the port)."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import signal
    import socket

    import uvicorn

    from cli.serve import TransportBounds, serve

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    run = uvicorn.Server.run

    def signalled_first(self, sockets=None):
        signal.raise_signal(signal.SIGTERM)  # before uvicorn's capture_signals installs its handlers
        return run(self, sockets=sockets)

    uvicorn.Server.run = signalled_first
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    bounds = TransportBounds(header_limit_bytes=8192, header_timeout_seconds=5.0, keep_alive_seconds=5,
                             max_concurrency=10)
    serve(app, "127.0.0.1", 0, bounds, sockets=[sock])
    print("stopped")
""")


def test_a_sigterm_before_uvicorn_takes_its_signals_stops_the_server() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"
