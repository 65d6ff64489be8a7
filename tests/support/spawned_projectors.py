"""`tally projector` subprocesses a test starts with TALLY_* settings, SIGKILLs by pid, and always reaps."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.dev_server import ROOT

ENTRY = "from cli.main import run; run()"


class SpawnedProjectors:
    """Every projector process started here; `close()` kills (SIGKILL) and reaps whatever still runs."""

    def __init__(self, redis_url: str, partitions: int, log_dir: Path, **settings: str) -> None:
        self.log_dir = log_dir
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
        self.env.update({"TALLY_REDIS_URL": redis_url, "TALLY_PARTITIONS": str(partitions)})
        self.env.update({f"TALLY_{name.upper()}": value for name, value in settings.items()})
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.started = 0
        self.killed = 0

    def start(self) -> str:
        """Start one `tally projector --holder NAME`; returns NAME."""
        self.started += 1
        name = f"spawned-{self.started:03d}"
        with (self.log_dir / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen([sys.executable, "-c", ENTRY, "projector", "--holder", name],
                                                  cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return name

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.killed += 1

    def exited_on_their_own(self) -> dict[str, str]:
        """Processes that died without being killed, with the tail of their log: always a bug."""
        return {name: f"exit {p.returncode}: {self.log_tail(name)}"
                for name, p in self.running.items() if p.poll() is not None}

    def log_tail(self, name: str, chars: int = 2000) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")[-chars:]

    def close(self) -> None:
        for name in list(self.running):
            self.kill(name)
