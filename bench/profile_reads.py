"""Where a balance read's time goes, and before/after comparisons: the reads bench's set-up, then alternating runs.

    .venv/bin/python -m bench.profile_reads [--other DIR] [--rounds 3] [--rate 1000] [--seconds 4] [--capacity 3]
    .venv/bin/python -m bench.profile_reads --py-spy OUT.txt [--mode real-time]

Starts one redis-server and the bench.reads workload (1,000 wallets, 20 folded events and 3 unfolded tail events
per customer), one `tally api` from this tree ("this"), optionally one from `--other DIR` (a checkout of another
commit, e.g. `git worktree add --detach /tmp/base HEAD~1`: its modules come from its own directory) and the bare
ceiling (bench.ceiling_app). Each round runs every server and mode once, in turn (A B A B ...), open loop at `--rate`
and, with `--capacity`, closed loop with 16 connections; it prints per run p50/p99 and the server's CPU per request
and at the end the medians. With `--py-spy`, it records the API under open-loop load instead (py-spy in the venv).
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.machine import SUBJECT_CPU, OwnRedis, own_redis, pin, stop_process, wait_http
from bench.reads import BALANCE, ReadPlan, generate, prepare, tally_argv, tally_env
from cli.stores import free_port

PATHS = {"from_cache": BALANCE + "?from_cache=true", "real-time": BALANCE, "ceiling": "/ceiling/{i:05d}"}


def start(argv: list[str], cwd: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, cwd=cwd, env=os.environ | env, stdout=subprocess.DEVNULL)
    pin(process.pid, SUBJECT_CPU)
    wait_http(port, process)
    return process


def run_round(servers: dict[str, tuple[int, int]], plan: ReadPlan, redis_pid: int,
              closed: bool) -> list[tuple[str, dict[str, Any]]]:
    results = []
    for name, (port, pid) in servers.items():
        for mode in (("ceiling",) if name == "ceiling" else ("from_cache", "real-time")):
            got = generate(port, PATHS[mode], plan, pid, redis_pid, closed)
            label = f"{name}/{mode}" + (" capacity" if closed else "")
            print(f"{label:32} p50 {got['p50_ms']:.2f} p99 {got['p99_ms']:.2f} ms, {got['achieved_rps']:,.0f} "
                  f"req/s, server {got['server_ms_per_request'] * 1000:.0f} µs/req; {got['cpu']}", flush=True)
            results.append((label, got))
    return results


def report(results: list[tuple[str, dict[str, Any]]]) -> None:
    labels = dict.fromkeys(label for label, _ in results)
    print("\nmedians (min-max):")
    for label in labels:
        runs = [got for name, got in results if name == label]
        cells = []
        for key, unit, scale in (("p99_ms", "ms", 1), ("achieved_rps", "req/s", 1),
                                 ("server_ms_per_request", "µs/req", 1000)):
            values = [r[key] * scale for r in runs]
            cells.append(f"{key.split('_')[0]} {statistics.median(values):,.2f} "
                         f"({min(values):,.2f}-{max(values):,.2f}) {unit}")
        print(f"{label:32} " + "; ".join(cells))


def py_spy(port: int, pid: int, plan: ReadPlan, redis_pid: int, mode: str, out: str) -> None:
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format",
                            "raw", "--output", out, "--duration", str(int(plan.warmup + plan.duration)),
                            "--nonblocking", "--rate", "1000"])
    generate(port, PATHS[mode], plan, pid, redis_pid, False)
    spy.wait(timeout=60)


def asgi_runs(trees: dict[str, Path], url: str, args: argparse.Namespace) -> None:
    """`bench.read_cost` from each tree in turn, `--rounds` times per mode: CPU per read inside the process."""
    script = str(Path(__file__).resolve().parent / "read_cost.py")
    cpu: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for mode in ("from_cache", "real-time"):
            for name, tree in trees.items():
                env = os.environ | tally_env(url) | {"PYTHONPATH": str(tree)}
                out = subprocess.run([sys.executable, script, "--redis-url", url, "--mode", mode, "--requests",
                                      str(args.asgi), "--customers", str(args.customers)], cwd=tree, env=env,
                                     check=True, capture_output=True).stdout
                got = json.loads(out)
                cpu.setdefault(f"{name}/{mode}", []).append(got["cpu_us_per_request"])
                print(f"{name}/{mode}: {got['cpu_us_per_request']:.1f} µs CPU per read", flush=True)
    for label, values in cpu.items():
        print(f"{label:24} median {statistics.median(values):.1f} µs ({min(values):.1f}-{max(values):.1f})")


async def prepared(url: str, customers: int) -> None:
    await prepare(url, customers)


def http_runs(trees: dict[str, Path], store: OwnRedis, args: argparse.Namespace) -> None:
    """A `tally api` from each tree and (unless --no-ceiling) the ceiling app; alternating runs, or py-spy."""
    plan = ReadPlan(args.customers, args.rate, 1.0, args.seconds, args.capacity, 1)
    processes: list[subprocess.Popen[bytes]] = []
    servers: dict[str, tuple[int, int]] = {}
    try:
        for name, tree in trees.items():
            port = free_port()
            processes.append(start(tally_argv(port), tree, tally_env(store.url), port))
            servers[name] = (port, processes[-1].pid)
        if not args.no_ceiling:
            port = free_port()
            argv = [sys.executable, "-m", "bench.ceiling_app", "--port", str(port), "--redis-url", store.url]
            processes.append(start(argv, trees["this"], {}, port))
            servers["ceiling"] = (port, processes[-1].pid)
        if args.py_spy:
            py_spy(*servers["this"], plan, store.pid, args.mode, args.py_spy)
            return
        results = []
        for _ in range(args.rounds):
            results += run_round(servers, plan, store.pid, False)
            if args.capacity:
                results += run_round(servers, plan, store.pid, True)
        report(results)
    finally:
        for process in processes:
            stop_process(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, help="a checkout of another commit, served as 'other'")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--capacity", type=float, default=0.0, help="seconds of closed loop per run (0: none)")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--py-spy", metavar="OUT", help="record `this` with py-spy under open-loop load")
    parser.add_argument("--asgi", type=int, default=0, metavar="N",
                        help="instead: N reads through the ASGI app in-process per run (bench.read_cost)")
    parser.add_argument("--mode", choices=("from_cache", "real-time"), default="real-time")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    trees = {"this": here} | ({"other": args.other.resolve()} if args.other else {})
    with own_redis("everysec") as store:
        asyncio.run(prepared(store.url, args.customers))
        if args.asgi:
            asgi_runs(trees, store.url, args)
        else:
            http_runs(trees, store, args)

if __name__ == "__main__":
    main()
