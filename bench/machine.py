"""The machine the figures come from, CPU pinning, and a private redis-server per section."""

import contextlib
import os
import platform
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

from cli.stores import free_port, start_redis_server

# Two cores: Redis (and the load generator / producer) on one, the process under test on the other.
REDIS_CPU = 0
SUBJECT_CPU = 1


def describe() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "redis": redis_version.split(" v=")[1].split()[0] if " v=" in redis_version else redis_version,
        "kernel": platform.release(),
    }


def pin(pid: int, cpu: int) -> None:
    """Pin a process to one CPU when the machine has more than one; a no-op otherwise."""
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu})


def unpin(pid: int = 0) -> None:
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, set(range(os.cpu_count() or 1)))


class OwnRedis(msgspec.Struct, frozen=True):
    url: str
    pid: int


@contextlib.contextmanager
def own_redis(fsync: str) -> Iterator[OwnRedis]:
    """A fresh redis-server (AOF on, `appendfsync fsync`) on a free loopback port, pinned to REDIS_CPU."""
    with tempfile.TemporaryDirectory(prefix="tally-bench-") as data_dir:
        port = free_port()
        process = start_redis_server(Path(data_dir), port, fsync)
        pin(process.pid, REDIS_CPU)
        try:
            yield OwnRedis(f"redis://127.0.0.1:{port}/0", process.pid)
        finally:
            stop_process(process)


_stderr: dict[int, IO[bytes]] = {}


def spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a child process; its stderr is kept so a failure can be reported with the child's last words."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop_process, after the child is gone
    process = subprocess.Popen(argv, env=os.environ | (env or {}), stdout=subprocess.DEVNULL, stderr=log)
    _stderr[process.pid] = log
    return process


def last_words(process: subprocess.Popen[bytes], limit: int = 400) -> str:
    log = _stderr.get(process.pid)
    if log is None:
        return ""
    log.seek(0)
    lines = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    return (" | ".join(lines[-3:]))[-limit:]


def wait_http(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening: {last_words(process)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    log = _stderr.pop(process.pid, None)
    if log is not None:
        log.close()


TICK = os.sysconf("SC_CLK_TCK")
OTHER_LOAD: list[float] = []  # every CpuMeter window's other load; bench.run reads it per section


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _machine_busy() -> float:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


class CpuMeter:
    """CPU used by named processes and by the whole machine over a window, as % of one core.

    What the machine used beyond the named processes is other load (this is a shared machine): it is reported
    so a figure taken while something else was busy can be recognised.
    """

    def __init__(self, **pids: int) -> None:
        self.pids = pids

    def start(self) -> None:
        self.wall = time.perf_counter()
        self.before = {name: _process_cpu(pid) for name, pid in self.pids.items()}
        self.machine = _machine_busy()

    def _used(self) -> tuple[dict[str, float], float]:
        wall = time.perf_counter() - self.wall
        used = {name: (_process_cpu(pid) - self.before[name]) / wall * 100 for name, pid in self.pids.items()}
        other = (_machine_busy() - self.machine) / wall * 100 - sum(used.values())
        return used, max(0.0, other)

    def other(self) -> float:
        return self._used()[1]

    def cpu_seconds(self, name: str) -> float:
        """CPU seconds the named process used since start()."""
        return _process_cpu(self.pids[name]) - self.before[name]

    def stop(self) -> str:
        used, other = self._used()
        OTHER_LOAD.append(other)
        parts = [f"{name} {value:.0f} %" for name, value in used.items()]
        return "CPU " + ", ".join([*parts, f"other load {other:.0f} %"])
