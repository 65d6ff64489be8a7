"""`tally dev` or `tally api` as a real subprocess: started on a free port against a given Redis, polled until healthy,
stopped."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from cli.stores import free_port

KEY = "e2e-key"
TENANT, ENVIRONMENT = "tenant_dev", "env_dev"  # what `tally dev --api-key` binds its key to
PARTITIONS = 4
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class DevServerFailed(RuntimeError):
    """`tally dev` or `tally api` exited or never answered /healthz; the message carries its log."""


@dataclass(frozen=True)
class DevServer:
    url: str
    redis_url: str
    log: Path
    pid: int = 0

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Poll /healthz until it answers 200; raise with the log if the process dies or the deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise DevServerFailed(f"tally exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise DevServerFailed(f"no /healthz answer within {START_TIMEOUT}s:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def dev_server(redis_url: str, workdir: Path, **settings: str) -> Iterator[DevServer]:
    """`tally dev --port P --api-key KEY` on `redis_url` (TALLY_PARTITIONS=4, data dir in `workdir`), plus
    `TALLY_<NAME>=value` for each keyword (fast webhook backoff, short leases, …); stopped on exit."""
    with _tally(redis_url, workdir, "dev", ["--api-key", KEY], settings) as server:
        yield server


@contextmanager
def api_server(redis_url: str, workdir: Path, **settings: str) -> Iterator[DevServer]:
    """`tally api --port P` (its default bind) with TALLY_API_KEYS=KEY bound to TENANT/ENVIRONMENT, plus
    `TALLY_<NAME>=value` for each keyword (limits, timeouts, operator keys, …); stopped on exit."""
    settings = {"api_keys": f"{KEY}:{TENANT}:{ENVIRONMENT}", **settings}
    with _tally(redis_url, workdir, "api", [], settings) as server:
        yield server


@contextmanager
def _tally(redis_url: str, workdir: Path, command: str, args: list[str], settings: dict[str, str]
           ) -> Iterator[DevServer]:
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
    env.update(TALLY_REDIS_URL=redis_url, TALLY_DATA_DIR=str(workdir / "data"), TALLY_PARTITIONS=str(PARTITIONS))
    env.update({f"TALLY_{name.upper()}": value for name, value in settings.items()})
    log = workdir / f"tally-{command}.log"
    argv = [sys.executable, "-c", "from cli.main import run; run()", command, "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url, log)
        yield DevServer(url=url, redis_url=redis_url, log=log, pid=process.pid)
    finally:
        _stop(process)
