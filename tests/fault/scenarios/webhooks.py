"""Scenario: one tenant's webhook receivers dribble their replies; another tenant's deliveries must not wait for them.

Tenant A registers endpoints whose receiver answers 200 and then trickles the body for far longer than the attempt
deadline, and gets a burst of notices: more attempts than its tenant and endpoint bounds allow at once. While those
attempts hang, tenant B's notices are written; each must reach B's receiver while every A attempt that was in flight
when it was written is still in flight. If A's hanging attempts held B back (a shared slot, a loop awaiting them),
B would arrive only once one of them ended, at A's deadline: the check needs no wall-clock bound, so a slow machine
cannot break it (the deadline is long, DEADLINE_MS, so B has ample time even when the machine is loaded).
Row: events = deliveries made, faults = dribbled attempts, lost = B deliveries that arrived only after such an A
attempt ended, or never (a stall), duplicated = B messages received twice; every A attempt must end as `timeout`.
"""

import contextlib
import random
import time
from pathlib import Path

from tests.fault.scenarios.common import stage
from tests.support.faults import Row
from tests.support.webhook_receiver import Receiver, Route, webhook_receiver
from tests.support.webhook_sender import SECRET, add_endpoint, add_notice, deliveries, running, sender, wait_until

DEADLINE_MS = 10_000  # how long each A attempt hangs before the sender gives up on it
STALL_S = 120.0  # polled waits return once their state holds; the bound only marks a stall
TENANT_A, TENANT_B = ("tenant_slow", "env_1"), ("tenant_fine", "env_1")


async def run(tmp_path: Path, a_endpoints: int, a_notices: int, b_notices: int, seed: int) -> Row:
    rng = random.Random(seed)
    row = Row(f"webhooks: {a_endpoints} endpoints of one tenant dribble replies, another tenant's deliveries")
    started = time.monotonic()
    routes = {"/a": Route(SECRET, fail_first=0, dribble_s=60.0), "/b": Route(SECRET, fail_first=0)}
    async with stage(tmp_path, partitions=4) as st:
        with webhook_receiver(routes) as receiver:
            for n in range(a_endpoints):
                await add_endpoint(st.redis, TENANT_A, f"whe_a{n}", receiver.url("/a"))
            await add_endpoint(st.redis, TENANT_B, "whe_b", receiver.url("/b"))
            for n in range(a_notices):
                await add_notice(st.redis, TENANT_A, f"a{n}", partition=rng.randrange(4))
            async with running(sender(st.redis, timeout_ms=DEADLINE_MS, poll_ms=200, backoff_base_ms=1000)):
                await wait_until(lambda: len(receiver.dribbling("/a", time.monotonic())) >= 2, STALL_S,
                                 "tenant A's receiver is dribbling")
                written = time.monotonic()
                for n in range(b_notices):
                    await add_notice(st.redis, TENANT_B, f"b{n}", partition=rng.randrange(4))
                with contextlib.suppress(AssertionError):  # a B notice that never arrives is counted as lost
                    await wait_until(lambda: len(receiver.attempts("/b")) >= b_notices, STALL_S, "B's notices")
            a_found = await deliveries(st.redis, TENANT_A)
        row.events = len(a_found) + len(receiver.attempts("/b"))
        row.faults = len(receiver.dribbles)
        row.duplicated = sum(len(tries) - 1 for tries in receiver.attempts("/b").values())
        judge(row, receiver, written, b_notices)
        classes = {d.last_error for d in a_found if d.attempts}
        if classes - {"timeout"}:
            row.problems.append(f"tenant A's attempts ended as {sorted(classes)}, not only timeout")
    row.seconds = time.monotonic() - started
    return row


def judge(row: Row, receiver: Receiver, written: float, b_notices: int) -> None:
    """B deliveries that arrived after the first end of the A attempts in flight when B was written, or never."""
    holding = receiver.dribbling("/a", written)
    if not holding:
        row.problems.append("no A attempt was in flight when B's notices were written: the test proves nothing")
    first_end = min((d.ended if d.ended is not None else float("inf") for d in holding), default=float("-inf"))
    arrivals = [tries[0].at for tries in receiver.attempts("/b").values()]
    row.lost = b_notices - len(arrivals) + sum(1 for at in arrivals if at >= first_end)
    slowest = max((at - written for at in arrivals), default=float("nan"))
    row.note = (f"B: {len(arrivals)}/{b_notices} deliveries, slowest {slowest * 1000:.0f} ms after written, while "
                f"{len(holding)} A attempts were in flight (the first ended {(first_end - written) * 1000:.0f} ms "
                f"after B was written; deadline {DEADLINE_MS} ms); A held {row.faults} dribbling attempts in all")
