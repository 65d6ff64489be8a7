"""Where the embedded `tally dev` keeps its events: TALLY_REDIS_URL, a local redis-server, or in-process fakeredis;
and where operator commands find the redis-server a running `tally dev` started (<data dir>/dev-store.json)."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from store.connect import connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Server settings tally is sized for (README "Memory"; compose.yaml passes the same). Stream nodes of at most 1 KB
# instead of 4 KB: Redis preallocates a node's full size, so a customer stream holding a day of a quiet customer's
# events costs ~6 KB instead of ~9 KB. Hash values up to 512 B (instead of 64) in the compact encoding: a wallet's
# stored ledger (entries of ~100-300 B) stays a listpack up to 128 entries, ~290 B an entry instead of ~450.
REDIS_SETTINGS = ("--stream-node-max-bytes", "1024", "--hash-max-listpack-value", "512")


async def settings_advice(redis: Redis) -> list[str]:
    """Where the server's settings differ from REDIS_SETTINGS, said for an operator; nothing when CONFIG is not
    allowed (managed Redis services often refuse it)."""
    advice = []
    for flag, wanted in zip(REDIS_SETTINGS[::2], REDIS_SETTINGS[1::2], strict=True):
        name = flag.removeprefix("--")
        try:
            found: Any = await redis.config_get(name)
        except ResponseError:
            return []
        have = found.get(name)
        if have is not None and str(have) != wanted:
            advice.append(f"redis-server has {name} {have}; tally is sized for {wanted} (README \"Memory\": "
                          f"per-customer memory is higher without it)")
    return advice


class PortTaken(RuntimeError):
    """Another server answers on the port a redis-server was started on (it took the port first)."""


def start_redis_server(data_dir: Path, port: int, fsync: str = "always",
                       settings: Sequence[str] = REDIS_SETTINGS) -> subprocess.Popen[bytes]:
    """A redis-server with AOF on and `settings`, its files in `data_dir`; returns once it answers PING, itself
    (its process id, in INFO): a port taken meanwhile by another server raises PortTaken, never hands that one
    back (a free port is free only when it is looked at)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve()),
         "--appendonly", "yes", "--appendfsync", fsync, "--save", "", "--logfile", "redis.log", *settings],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = SyncRedis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            answered = bool(client.ping())  # raises while a server still loads its AOF
            if int(client.info("server")["process_id"]) == process.pid:
                return process
        except Exception:
            answered = False
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            process.wait(timeout=10)
            if answered:
                raise PortTaken(f"another server answers on port {port}; this redis-server could not take it")
            raise RuntimeError(f"redis-server did not start on port {port}; see {data_dir}/redis.log")
        time.sleep(0.05)


@contextlib.contextmanager
def embedded_store(redis_url: str | None, data_dir: str, warn: Callable[[str], None]) -> Iterator[Callable[[], Redis]]:
    """Yield a client factory for the dev store, and stop any server it started on exit."""
    if redis_url:
        yield lambda: connect(redis_url)
        return
    if shutil.which("redis-server"):
        port, process = _started_on_a_free_port(Path(data_dir))
        warn(f"store: redis-server on 127.0.0.1:{port}, AOF (appendfsync always) in {Path(data_dir).resolve()}")
        record = record_dev_store(Path(data_dir), f"redis://127.0.0.1:{port}/0")
        try:
            yield lambda: connect(f"redis://127.0.0.1:{port}/0")
        finally:
            record.unlink(missing_ok=True)
            process.terminate()
            process.wait(timeout=10)
        return
    import fakeredis

    server: Any = fakeredis.FakeServer()
    warn("store: no TALLY_REDIS_URL and no redis-server on PATH; using in-process fakeredis — NOTHING PERSISTS")
    yield lambda: fakeredis.FakeAsyncRedis(server=server)


def _started_on_a_free_port(data_dir: Path, attempts: int = 3) -> tuple[int, subprocess.Popen[bytes]]:
    """A redis-server on a port free when looked at; another port if another server took that one first."""
    for _ in range(attempts - 1):
        port = free_port()
        with contextlib.suppress(PortTaken):
            return port, start_redis_server(data_dir, port)
    port = free_port()
    return port, start_redis_server(data_dir, port)


DEV_STORE_FILE = "dev-store.json"


def record_dev_store(data_dir: Path, url: str) -> Path:
    """Say where this `tally dev`'s redis-server listens, for `tally lag`, `verify`, `replay`, `dlq` run beside it
    without TALLY_REDIS_URL; removed when `tally dev` stops."""
    path = data_dir / DEV_STORE_FILE
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    return path


def running_dev_store(data_dir: str) -> str | None:
    """The URL of the redis-server a running `tally dev` with this data dir started; None when there is none (no
    file, or one left by a `tally dev` that is not running any more)."""
    try:
        found = json.loads((Path(data_dir) / DEV_STORE_FILE).read_text())
        os.kill(int(found["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(found["url"])
