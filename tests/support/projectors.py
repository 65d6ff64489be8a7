"""Real `tally projector` processes for fault tests: started with TALLY_* settings, SIGKILLed, always reaped.

A cold start runs the console entry (`cli.main:run`) in a fresh interpreter. A warm start asks a fork server,
which imported `cli.main` once, to fork a child that calls the same `run()` with `projector --holder NAME`:
the same code in its own process, minus the ~1 s of imports, so a test can kill dozens within its time budget.
The fork server is the parent of its children, so it kills and reaps them itself (no pid is ever reused under
us), and kills them all when the test closes its stdin.
"""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from store.keys import Keys

ENTRY = "from cli.main import run; run()"
FORK_SERVER = r"""
import os, signal, sys
from cli.main import run
children = {}
print("ready", flush=True)

def reap(name, how):
    pid = children.pop(name)
    if how:
        os.kill(pid, how)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

for line in sys.stdin:
    verb, name = line.split()
    if verb == "start":
        pid = os.fork()
        if pid == 0:
            log = os.open(os.path.join(sys.argv[1], name + ".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            sys.argv = ["tally", "projector", "--holder", name]
            code = 1
            try:
                run()
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            finally:
                os._exit(code)
        children[name] = pid
        reply = pid
    elif verb in ("stop", "cont"):
        os.kill(children[name], signal.SIGSTOP if verb == "stop" else signal.SIGCONT)
        reply = "ok"
    elif verb == "poll":
        pid, status = os.waitpid(children[name], os.WNOHANG)
        reply = "running" if pid == 0 else os.waitstatus_to_exitcode(status)
        if pid:
            children.pop(name)
    else:
        reply = reap(name, {"kill": signal.SIGKILL, "term": signal.SIGTERM}[verb])
    print(reply, flush=True)
for name in list(children):
    reap(name, signal.SIGKILL)
"""


class ProjectorProcesses:
    """Every projector process a test starts; `close()` kills whatever is still running."""

    def __init__(self, redis_url: str, partitions: int, log_dir: Path, **settings: str) -> None:
        self.log_dir = log_dir
        self.keys = Keys(partitions)
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
        self.env.update({"TALLY_REDIS_URL": redis_url, "TALLY_PARTITIONS": str(partitions)})
        self.env.update({f"TALLY_{name.upper()}": value for name, value in settings.items()})
        self.cold: dict[str, subprocess.Popen[bytes]] = {}
        self.warm: set[str] = set()
        self.server: subprocess.Popen[str] | None = None
        self.started = 0

    @property
    def running(self) -> list[str]:
        return sorted([*self.cold, *self.warm])

    async def open(self) -> None:
        """Start the fork server and wait (off the event loop) until it has imported `cli.main`."""
        self.server = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(self.log_dir)], env=self.env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.server.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(self.server.stdout.readline), timeout=60)
        assert ready.strip() == "ready", f"the fork server did not start: {self.server.poll()}"

    def _ask(self, verb: str, name: str) -> str:
        assert self.server is not None, "call open() first"
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.write(f"{verb} {name}\n")
        self.server.stdin.flush()
        reply = self.server.stdout.readline().strip()
        assert reply, f"the fork server died: {self.server.poll()}"
        return reply

    def start(self, cold: bool = False) -> str:
        """Start one `tally projector --holder NAME` (cold: a fresh interpreter); returns NAME."""
        self.started += 1
        name = f"projector-{self.started:03d}"
        if not cold:
            self._ask("start", name)
            self.warm.add(name)
            return name
        with (self.log_dir / f"{name}.log").open("wb") as log:
            self.cold[name] = subprocess.Popen([sys.executable, "-c", ENTRY, "projector", "--holder", name],
                                               env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return name

    def _end(self, name: str, how: signal.Signals, timeout: float) -> int:
        if name in self.warm:
            self.warm.discard(name)
            return int(self._ask("kill" if how == signal.SIGKILL else "term", name))
        process = self.cold.pop(name)
        process.send_signal(how)
        return process.wait(timeout=timeout)

    def kill(self, name: str) -> None:
        self._end(name, signal.SIGKILL, 10)

    def stop(self, name: str, timeout: float = 15) -> int:
        """SIGTERM (finish the batch, release the leases) and wait; returns the exit code."""
        return self._end(name, signal.SIGTERM, timeout)

    def pause(self, name: str, paused: bool) -> None:
        """SIGSTOP (a process frozen mid-instruction, like a long GC or VM pause) or SIGCONT it."""
        if name in self.warm:
            self._ask("stop" if paused else "cont", name)
        else:
            self.cold[name].send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def exit_code(self, name: str) -> int | None:
        """None while it runs; a process that ended without being killed is dropped from `running`."""
        if name in self.cold:
            code = self.cold[name].poll()
            if code is not None:
                del self.cold[name]
            return code
        reply = self._ask("poll", name)
        if reply == "running":
            return None
        self.warm.discard(name)
        return int(reply)

    def exited_on_their_own(self) -> dict[str, str]:
        """Processes that died without being killed, with the tail of their log: always a bug."""
        codes = {name: self.exit_code(name) for name in self.running}
        return {name: f"exit {code}: {self.log_tail(name)}" for name, code in codes.items() if code is not None}

    def log_tail(self, name: str, chars: int = 2000) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")[-chars:]

    async def wait_joined(self, redis: Redis, name: str, timeout: float = 120) -> None:
        """Poll until the process has sent its first membership heartbeat (it is running its workers)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await redis.zscore(self.keys.projectors(), name) is None:
            code = self.exit_code(name)
            if code is not None:
                raise AssertionError(f"projector {name} exited with {code}: {self.log_tail(name)}")
            if loop.time() > deadline:
                raise TimeoutError(f"projector {name} did not join in {timeout}s: {self.log_tail(name)}")
            await asyncio.sleep(0.02)

    async def holds_a_lease(self, redis: Redis, name: str) -> bool:
        holders = [await redis.get(self.keys.lease(p)) for p in range(self.keys.partitions)]
        return any(h is not None and h.decode().startswith(f"{name}#") for h in holders)

    def close(self) -> None:
        for name in list(self.cold):
            self.kill(name)
        if self.server is not None:
            assert self.server.stdin is not None
            self.server.stdin.close()  # the fork server kills and reaps its children, then exits
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=10)
            self.server = None
        self.warm.clear()
