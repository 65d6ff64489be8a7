"""Where the ingest routes spend their time, and what they cost: one `tally api` on its own Redis under load.

    .venv/bin/python -m bench.profile_ingest single|bulk [--profile FILE] [--rounds 3] [--seconds 4]

Starts a redis-server (AOF everysec) and `tally api` (pinned as bench.ingest pins them), drives POST /v1/events
(16 connections, closed loop) or POST /v1/events/bulk (4 connections, 1,000 events each) with bench.ingest_loadgen,
and prints per round the rate, the server's and Redis's process CPU per event, and the machine's other load.
With --profile the server runs under cProfile and writes its stats to FILE at exit (read shares, not absolute
times: the profiler inflates Python-heavy code several times).
"""

import argparse
import asyncio
import statistics
import sys

from bench.ingest import PER_REQUEST, IngestPlan, Target, bulk, capacity, prepare
from bench.machine import _process_cpu, own_redis
from bench.reads import server, tally_argv, tally_env
from cli.stores import free_port


def profiled_argv(port: int, out: str) -> list[str]:
    """tally_argv's server under cProfile (stats dumped when the server exits on SIGTERM/SIGINT)."""
    argv = tally_argv(port)
    code = argv[argv.index("-c") + 1]
    rest = argv[argv.index("-c") + 2:]
    return [sys.executable, "-c",
            f"import cProfile, sys; sys.argv = ['tally', *{rest!r}]; cProfile.run({code!r}, {out!r})"]


async def measure(mode: str, rounds: int, seconds: float, profile: str | None) -> None:
    plan = IngestPlan(quick=True)
    plan.capacity_seconds = plan.bulk_seconds = seconds
    with own_redis("everysec") as store:
        await prepare(store.url, plan.customers)
        port = free_port()
        argv = profiled_argv(port, profile) if profile else tally_argv(port)
        with server(argv, port, tally_env(store.url)) as tally:
            target, per_event = Target("tally", port, tally.pid), []
            for _ in range(rounds):
                redis_before = _process_cpu(store.pid)
                run = await (bulk if mode == "bulk" else capacity)(target, store.pid, store.url, plan)
                sent = run["events_sent"]
                redis_us = (_process_cpu(store.pid) - redis_before) / max(1, sent) * 1e6
                events = run["events_per_s"] if mode == "bulk" else run["achieved_rps"]
                server_us = run["server_ms_per_request"] * 1000 / (PER_REQUEST if mode == "bulk" else 1)
                per_event.append(server_us)
                print(f"{mode}: {events:,.0f} ev/s, server CPU {server_us:.1f} µs/event, redis ~{redis_us:.1f} "
                      f"µs/event (warm-up included); {run['cpu']}; {run['check']}", flush=True)
            print(f"median server CPU {statistics.median(per_event):.1f} µs/event "
                  f"(runs {', '.join(f'{v:.1f}' for v in per_event)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("single", "bulk"))
    parser.add_argument("--profile", help="run the server under cProfile, stats to this file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    asyncio.run(measure(args.mode, args.rounds, args.seconds, args.profile))


if __name__ == "__main__":
    main()
