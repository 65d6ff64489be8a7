"""`tally api --workers N`: N API processes accepting on one listening socket, kept at N by their parent.

The parent binds the socket, then forks the workers; each runs its own event loop, its own Redis connections
(opened in the app's lifespan, after the fork) and its own per-process memos, which are checked against Redis on
every use, so no state needs sharing between them: every answer is whatever Redis holds, as with one worker.
The kernel spreads new connections between the processes accepting on the socket.

A worker that dies (a crash, an OOM kill) is replaced; a worker that dies within STARTUP_GRACE_SECONDS of its start
CRASH_LOOP times in a row stops the lot (a bad setting fails every worker alike: exit 1 rather than fork for ever).
SIGTERM or SIGINT to the parent stops every worker the way one worker stops (requests in flight finish), then the
parent exits; a worker still running GRACE_SECONDS later is killed; a parent killed outright takes its workers
with it (Linux). Each worker's /metrics counts its own requests only (a scrape sees whichever worker answers).
"""

import contextlib
import ctypes
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable
from types import FrameType

import typer

from cli.common import err

STARTUP_GRACE_SECONDS = 5.0
CRASH_LOOP = 5
GRACE_SECONDS = 30.0
PR_SET_PDEATHSIG = 1


def listening_socket(host: str, port: int) -> socket.socket:
    """The one socket every worker accepts on (address reuse on, as uvicorn binds its own)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Forks `run_worker(sock)` `workers` times and keeps that many running until told to stop."""

    def __init__(self, workers: int, sock: socket.socket, run_worker: Callable[[socket.socket], None]) -> None:
        self.workers, self.sock, self.run_worker = workers, sock, run_worker
        self.started: dict[int, float] = {}  # pid -> monotonic start
        self.stopping = False
        self.quick_deaths = 0
        self.forked = 0  # workers started in all, replacements included

    def run(self) -> int:
        """Serve until a signal (0) or a crash loop (1)."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._kill_stragglers)
        try:
            for _ in range(self.workers):
                self._fork()
            while self.started:
                self._reap_one()
            return 1 if self.quick_deaths >= CRASH_LOOP else 0
        finally:
            signal.alarm(0)  # every worker has ended: no straggler to kill
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _fork(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: default signal handling (uvicorn installs its own), serve, never return here
            code = 0
            try:
                for number in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
                    signal.signal(number, signal.SIG_DFL)
                die_with(parent)
                self.run_worker(self.sock)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except typer.Exit as exc:
                code = exc.exit_code
            except BaseException:  # reported, then the parent replaces this worker
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        self.started[pid] = time.monotonic()
        self.forked += 1

    def _reap_one(self) -> None:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            self.started.clear()
            return
        except InterruptedError:
            return
        began = self.started.pop(pid, None)
        if began is None or self.stopping:
            return
        quick = time.monotonic() - began < STARTUP_GRACE_SECONDS
        self.quick_deaths = self.quick_deaths + 1 if quick else 0
        err.print(f"[yellow]API worker {pid} ended ({describe(status)}); "
                  f"{'starting another' if self.quick_deaths < CRASH_LOOP else 'it keeps failing: stopping'}[/yellow]")
        if self.quick_deaths < CRASH_LOOP:
            self._fork()
        else:
            self._stop(signal.SIGTERM, None)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        self.stopping = True
        for pid in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        signal.alarm(int(GRACE_SECONDS))

    def _kill_stragglers(self, signum: int, frame: FrameType | None) -> None:
        for pid in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def die_with(parent: int) -> None:
    """SIGTERM this worker when its parent dies, even by SIGKILL (Linux; elsewhere a no-op), so a killed parent
    leaves no worker holding the port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
