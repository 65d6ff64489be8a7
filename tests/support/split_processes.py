"""`tally api` and `tally projector` as two real subprocesses on one Redis, as production runs them."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cli.stores import free_port
from tests.support.dev_server import ROOT, _stop, _wait_healthy

API_KEY = "split-key"
TENANT, ENVIRONMENT = "tenant_split", "env_split"
PARTITIONS = 4


@dataclass(frozen=True)
class SplitProcesses:
    host: str
    port: int
    api: subprocess.Popen[bytes]
    projector: subprocess.Popen[bytes]
    logs: tuple[Path, Path]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                         for log in self.logs)

    def running(self) -> bool:
        return self.api.poll() is None and self.projector.poll() is None


def _spawn(stack: ExitStack, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from cli.main import run; run()", *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    stack.callback(_stop, process)
    return process


@contextmanager
def split_processes(redis_url: str, workdir: Path, api_workers: int = 1) -> Iterator[SplitProcesses]:
    """Both halves with TALLY_PARTITIONS=4 and API_KEY bound to TENANT/ENVIRONMENT (the API with `api_workers`
    processes); request logging off so the API spends its time on requests. Stopped (SIGTERM, then SIGKILL) on
    exit."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
    env.update(TALLY_REDIS_URL=redis_url, TALLY_PARTITIONS=str(PARTITIONS), TALLY_REQUEST_LOG="false",
               TALLY_LOG_LEVEL="WARNING", TALLY_API_KEYS=f"{API_KEY}:{TENANT}:{ENVIRONMENT}")
    host, port = "127.0.0.1", free_port()
    logs = (workdir / "tally-api.log", workdir / "tally-projector.log")
    with ExitStack() as stack:
        api = _spawn(stack, ["api", "--host", host, "--port", str(port), "--workers", str(api_workers)], env, logs[0])
        projector = _spawn(stack, ["projector", "--holder", "split-projector"], env, logs[1])
        _wait_healthy(api, f"http://{host}:{port}", logs[0])
        yield SplitProcesses(host=host, port=port, api=api, projector=projector, logs=logs)
