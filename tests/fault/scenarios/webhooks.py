"""Scenario: one tenant's webhook receivers dribble their replies; another tenant's deliveries must not wait for them.

Tenant A registers endpoints whose receiver answers 200 and then trickles the body for far longer than the attempt
deadline, and gets a burst of notices: more attempts than its tenant and endpoint bounds allow at once. While those
attempts hang, tenant B's notices arrive one by one; each must reach B's receiver within the deadline + 1 s of being
written (measured from the notice's write to its arrival). Row: events = deliveries made, faults = dribbled attempts,
lost = B deliveries late or missing, duplicated = B messages received twice; every A attempt must end as `timeout`.
"""

import random
import time
from pathlib import Path

from redis.asyncio import Redis

from tests.fault.scenarios.common import stage
from tests.support.faults import Row
from tests.support.webhook_receiver import Receiver, Route, webhook_receiver
from tests.support.webhook_sender import SECRET, add_endpoint, add_notice, deliveries, running, sender, wait_until

DEADLINE_MS = 1000
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
                await wait_until(lambda: len(receiver.attempts("/a")) >= 2, 10, "tenant A's receiver is dribbling")
                latencies = [await _one_b_delivery(st.redis, receiver, n, rng) for n in range(b_notices)]
            a_found = await deliveries(st.redis, TENANT_A)
        b_ids = receiver.attempts("/b")
        row.events = len(a_found) + len(b_ids)
        row.faults = sum(len(tries) for tries in receiver.attempts("/a").values())
        bound = DEADLINE_MS / 1000 + 1.0
        row.lost = sum(1 for latency in latencies if latency is None or latency > bound)
        row.duplicated = sum(len(tries) - 1 for tries in b_ids.values())
        classes = {d.last_error for d in a_found if d.attempts}
        if classes - {"timeout"}:
            row.problems.append(f"tenant A's attempts ended as {sorted(classes)}, not only timeout")
        worst = max((t for t in latencies if t is not None), default=float("nan"))
        row.note = (f"B: {b_notices} deliveries, slowest {worst * 1000:.0f} ms (bound {bound * 1000:.0f} ms) "
                    f"while A held {row.faults} dribbling attempts")
    row.seconds = time.monotonic() - started
    return row


async def _one_b_delivery(redis: Redis, receiver: Receiver, n: int, rng: random.Random) -> float | None:
    """Write tenant B's n-th notice, wait for its arrival; the seconds it took (None: not within 10 s)."""
    before = len(receiver.attempts("/b"))
    written = time.monotonic()
    await add_notice(redis, TENANT_B, f"b{n}", partition=rng.randrange(4))
    try:
        await wait_until(lambda: len(receiver.attempts("/b")) > before, 10, f"B's notice {n} arrived")
    except AssertionError:
        return None
    arrived = max(r.at for tries in receiver.attempts("/b").values() for r in tries)
    return arrived - written
