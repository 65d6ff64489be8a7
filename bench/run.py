"""`make bench`: tally's figures next to ceilings measured in the same run, printed and written to RESULTS.md.

    .venv/bin/python -m bench.run                 full run (~5 min), rewrites bench/RESULTS.md
    .venv/bin/python -m bench.run --quick         short run (~75 s), prints only
    .venv/bin/python -m bench.run --only reads    one section (append, fold, reads, freshness, ingest, replay,
                                                  archive, alerts, hotwallet, history, cluster), prints only
"""

import argparse
import asyncio
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import alerts, append, archive_replay, cluster, fold, freshness, history, hotwallet, ingest, reads, replay
from bench.machine import OTHER_LOAD, CpuMeter, describe
from bench.report import Row, markdown_table, text_table

SECTIONS = ("append", "fold", "reads", "freshness", "ingest", "replay", "archive", "alerts", "hotwallet", "history",
            "cluster")
RESULTS = Path(__file__).with_name("RESULTS.md")


class Sizes:
    def __init__(self, quick: bool) -> None:
        self.customers = 1000
        self.append_events, self.append_rounds = (15_000, 2) if quick else (60_000, 3)
        self.fold_events, self.fold_rounds = (20_000, 1) if quick else (100_000, 2)
        self.diagnose = not quick
        self.read_customers = 300 if quick else 1000
        self.read_warmup, self.read_seconds = (0.5, 2.0) if quick else (1.0, 6.0)
        self.capacity_seconds = 0.0 if quick else 2.0
        self.read_rounds = 1 if quick else 3
        self.fresh_warmup, self.fresh_seconds = (0.5, 2.0) if quick else (1.0, 6.0)
        self.ingest = ingest.IngestPlan(quick)
        self.replay_events, self.replay_rounds = (20_000, 1) if quick else (100_000, 2)
        self.alert_warmup, self.alert_seconds = (0.5, 2.0) if quick else (1.0, 6.0)
        self.hot_seconds = 3.0 if quick else 6.0
        self.history = history.HistoryPlan(20_000 if quick else 100_000, quick)
        self.cluster_seconds = 2.0 if quick else 4.0


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[], Awaitable[list[Row]]]]]:
    sizes, fsync = Sizes(args.quick), args.fsync
    steps: list[tuple[str, Callable[[], Awaitable[list[Row]]]]] = [
        ("append", lambda: append.bench_append(fsync, sizes.append_events, sizes.customers, 500, sizes.append_rounds,
                                               sizes.diagnose)),
    ]
    if not args.quick and fsync != "always":
        steps.append(("append", lambda: append.bench_append("always", sizes.append_events, sizes.customers, 500,
                                                            sizes.append_rounds, False)))
    steps += [
        ("fold", lambda: fold.bench_fold(fsync, sizes.fold_events, sizes.customers, 1000, sizes.fold_rounds)),
        ("reads", lambda: reads.bench_reads(fsync, reads.ReadPlan(
            sizes.read_customers, 1000.0, sizes.read_warmup, sizes.read_seconds, sizes.capacity_seconds,
            sizes.read_rounds))),
        ("freshness", lambda: freshness.bench_freshness(
            fsync, sizes.customers, 5000.0, sizes.fresh_warmup, sizes.fresh_seconds)),
        ("ingest", lambda: ingest.bench_ingest(fsync, sizes.ingest)),
        ("replay", lambda: replay.bench_replay(fsync, sizes.replay_events, sizes.customers, sizes.replay_rounds)),
        ("archive", lambda: archive_replay.bench_archive_replay(fsync, sizes.replay_events, sizes.customers,
                                                                sizes.replay_rounds)),
        ("alerts", lambda: alerts.bench_alerts(fsync, sizes.customers, 5000.0, sizes.alert_warmup,
                                               sizes.alert_seconds)),
        ("hotwallet", lambda: hotwallet.bench_hotwallet(fsync, sizes.hot_seconds)),
        ("history", lambda: history.bench_history(fsync, sizes.history)),
        ("cluster", lambda: cluster.bench_cluster(fsync, sizes.ingest, sizes.cluster_seconds)),
    ]
    return [(name, step) for name, step in steps if not args.only or name in args.only]


def other_load(seconds: float = 1.0) -> float:
    """CPU % (of one core) the rest of the machine used over `seconds` (the bench shares it with whatever runs)."""
    meter = CpuMeter()
    meter.start()
    time.sleep(seconds)
    return meter.other()


def wait_quiet(limit: float, threshold: float = 25.0) -> str:
    """Wait up to `limit` seconds for the other load to drop under `threshold` %; say what was seen."""
    deadline, load = time.monotonic() + limit, other_load()
    while load >= threshold and time.monotonic() < deadline:
        load = other_load()
    return f"other load {load:.0f} % of one core"


def revision() -> str:
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], capture_output=True, text=True, cwd=RESULTS.parent.parent).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def header(args: argparse.Namespace, command: str) -> list[str]:
    quiet = wait_quiet(0)
    machine = describe()
    return [
        f"command: {command}",
        f"when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; source: {revision()}",
        f"machine: nproc {machine['nproc']}, CPU {machine['cpu']}, Python {machine['python']}, "
        f"Redis {machine['redis']}, kernel {machine['kernel']}",
        f"redis: own redis-server per section on a free loopback port, AOF on, appendfsync {args.fsync} "
        f"(append also under 'always' in a full run); pinned to CPU 0 with the load generator/producer; "
        f"the process under test (tally api, ceiling app, tally projector, bare follower; the bench process itself "
        f"while it replays) pinned to CPU 1",
        f"before the run: {quiet}" + (f"; each section first waited up to {args.wait_quiet:g} s for < 25 %"
                                       if args.wait_quiet else ""),
    ]


async def measure(steps: list[tuple[str, Callable[[], Awaitable[list[Row]]]]], quiet: float) -> list[Row]:
    rows: list[Row] = []
    for name, step in steps:
        seen = wait_quiet(quiet) if quiet else ""
        started = time.perf_counter()
        print(f"... {name}" + (f" (after waiting for quiet: {seen})" if seen else ""), file=sys.stderr, flush=True)
        OTHER_LOAD.clear()
        try:
            got = await step()
        except Exception as exc:  # one broken section (the tree is edited concurrently) must not hide the others
            got = [Row(name=name, value="FAILED", verdict="FAILED", note=f"{type(exc).__name__}: {exc}")]
        for row in got:
            row.background = f"{statistics.mean(OTHER_LOAD):.0f}/{max(OTHER_LOAD):.0f} %" if OTHER_LOAD else ""
        rows.extend(got)
        print(f"    {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return rows


def write_results(lines: list[str], rows: list[Row]) -> None:
    body = [
        "# tally benchmark results", "",
        "Written by `make bench` (`.venv/bin/python -m bench.run`); every full run overwrites this file.", "",
        *[f"- {line}" for line in lines], "",
        "Ratios: for rates, figure / ceiling; for latencies, ceiling / figure (so higher is better and 100 % means "
        "tally costs nothing over the ceiling). Each ceiling is measured in the same run, on the same Redis, "
        "with the same client or generator. `other load` (mean/max over the section's measurement windows, % of one "
        "core) is CPU used by processes outside the bench (a shared machine): figures taken while it is high are "
        "depressed and noisy.", "",
        markdown_table(rows), "",
    ]
    RESULTS.write_text("\n".join(body))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run (~75 s); does not write RESULTS.md")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--fsync", choices=("everysec", "always"), default="everysec", help="Redis appendfsync")
    parser.add_argument("--no-write", action="store_true", help="print only, even for a full run")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each section, wait up to SECONDS for other processes' CPU load to drop under "
                             "25 %% of a core (a shared machine)")
    args = parser.parse_args(argv)
    command = ".venv/bin/python -m bench.run" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    lines = header(args, command)
    print("\n".join(lines), flush=True)
    started = time.perf_counter()
    rows = asyncio.run(measure(plan(args), args.wait_quiet))
    print()
    print(text_table(rows))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if not (args.quick or args.only or args.no_write):
        write_results(lines, rows)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
