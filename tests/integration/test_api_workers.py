"""`tally api --workers N`: the workers share the port and the store, a dead worker is replaced, a signal to the
parent stops them all, and a killed parent leaves no worker behind."""

import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.split_processes import API_KEY, split_processes

WORKERS = 2
TIMEOUT = 30.0
CONCURRENT = 8
ROUND = 40
SERVED_CPU_SECONDS = 0.05


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def fresh_requests(url: str, names: range) -> list[int]:
    """A wallet for each customer named, each request on a new connection from one of CONCURRENT threads, so the
    kernel hands them to whichever worker accepts first."""

    def create(n: int) -> int:
        with httpx.Client(base_url=url, headers={"x-api-key": API_KEY}, timeout=10) as client:
            return client.post("/v1/wallets", json={"customer_id": f"cust_w{n}", "currency": "USD",
                                                    "initial_credits_to_load": "10"}).status_code

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(create, names))


def test_workers_share_the_port_and_the_store(clean_redis: str, tmp_path: Path) -> None:
    with split_processes(clean_redis, tmp_path, api_workers=WORKERS) as processes:
        workers = children(processes.api.pid)
        assert len(workers) == WORKERS
        before = {pid: cpu_seconds(pid) for pid in workers}
        sent, deadline = 0, time.monotonic() + TIMEOUT
        while min(cpu_seconds(pid) - before[pid] for pid in workers) < SERVED_CPU_SECONDS:
            assert time.monotonic() < deadline, "a worker took no share of the requests"
            assert fresh_requests(processes.url, range(sent, sent + ROUND)) == [200] * ROUND
            sent += ROUND
        with httpx.Client(base_url=processes.url, headers={"x-api-key": API_KEY}, timeout=10) as client:
            found = [len(client.get(f"/v1/customers/cust_w{n}/wallets").json()) for n in range(sent)]
        assert found == [1] * sent, "every worker's writes are in the one store, read back through every worker"


def test_a_dead_worker_is_replaced_and_sigterm_stops_every_worker(clean_redis: str, tmp_path: Path) -> None:
    with split_processes(clean_redis, tmp_path, api_workers=WORKERS) as processes:
        parent = processes.api.pid
        first = children(parent)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(children(parent)) == WORKERS and victim not in children(parent), "a replacement")
        assert fresh_requests(processes.url, range(ROUND)) == [200] * ROUND
        workers = children(parent)
        processes.api.send_signal(signal.SIGTERM)
        assert processes.api.wait(timeout=TIMEOUT) == 0
        wait_for(lambda: not any(alive(pid) for pid in workers), "every worker to stop")
        assert "ended (killed by SIGKILL); starting another" in processes.log_tails()


def test_a_killed_parent_takes_its_workers_with_it(clean_redis: str, tmp_path: Path) -> None:
    with split_processes(clean_redis, tmp_path, api_workers=WORKERS) as processes:
        workers = children(processes.api.pid)
        processes.api.kill()
        processes.api.wait(timeout=TIMEOUT)
        wait_for(lambda: not any(alive(pid) for pid in workers), "the orphaned workers to stop")
