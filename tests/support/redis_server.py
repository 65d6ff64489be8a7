"""A real redis-server for tests: started on a free port in a temp dir, restartable, or TALLY_TEST_REDIS_URL."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

from cli.stores import free_port, start_redis_server


class RedisServer:
    """A redis-server process the tests own; `kill()` + `start()` simulate a crash and a restart."""

    def __init__(self, data_dir: Path, fsync: str = "always") -> None:
        self.data_dir = data_dir
        self.fsync = fsync
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = start_redis_server(self.data_dir, self.port, self.fsync)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def external_url() -> str | None:
    return os.environ.get("TALLY_TEST_REDIS_URL") or None


def have_redis_server() -> bool:
    return shutil.which("redis-server") is not None
