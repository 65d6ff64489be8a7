"""Single-event ingest capacity through `tally api --workers 1` and `--workers N`, alternating, on one store.

    .venv/bin/python -m bench.api_workers [--workers 2] [--pairs 3] [--seconds 3]

Each run starts `tally api` with the given worker count on a fresh port of the same redis-server (the ingest
bench's store: a rate card and 1,000 wallets), drives it closed loop with bench.ingest_loadgen (32 keep-alive
connections, a unique event id per event) and prints the rate achieved. What more workers buy depends on the
cores left beside Redis and the load generator.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys

from bench.ingest import prepare
from bench.machine import own_redis, stop_process, wait_http
from bench.reads import API_KEY, tally_argv, tally_env
from cli.stores import free_port

CONNECTIONS = 32
CUSTOMERS = 1000


def capacity(url: str, workers: int, seconds: float, tag: str) -> float:
    port = free_port()
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
    process = subprocess.Popen([*tally_argv(port), "--workers", str(workers)], env=inherited | tally_env(url))
    try:
        wait_http(port, process)
        out = subprocess.run(
            [sys.executable, "-m", "bench.ingest_loadgen", "--port", str(port), "--path", "/v1/events", "--customers",
             str(CUSTOMERS), "--header", f"x-api-key: {API_KEY}", "--tag", tag, "--warmup", "0.5", "--duration",
             str(seconds), "--connections", str(CONNECTIONS), "--closed"],
            capture_output=True, text=True, check=True).stdout
        return float(json.loads(out)["achieved_rps"])
    finally:
        stop_process(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with own_redis("everysec") as server:
        asyncio.run(prepare(server.url, CUSTOMERS))
        for pair in range(args.pairs):
            for workers in (1, args.workers):
                rate = capacity(server.url, workers, args.seconds, f"w{workers}p{pair}")
                print(f"pair {pair + 1}: {workers} worker(s) {rate:,.0f} req/s", flush=True)


if __name__ == "__main__":
    main()
