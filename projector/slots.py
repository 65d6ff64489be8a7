"""Bounded concurrency for webhook attempts: a global bound, and one per tenant and per endpoint.

A slow endpoint can hold only its own slots (and at most its tenant's), never the sender: every other endpoint keeps
its turns. A delivery whose endpoint or tenant is full waits for the turn it is expected to get, estimated from how
long that endpoint's recent attempts took, so a long backlog of one slow endpoint steps out of everyone's way.
"""

import math
from collections import Counter

_SMOOTHING = 0.3
_REMEMBERED = 10_000


class Slots:
    def __init__(self, total: int, per_tenant: int, per_endpoint: int) -> None:
        self.total, self.per_tenant, self.per_endpoint = total, per_tenant, per_endpoint
        self.tenants: Counter[str] = Counter()
        self.endpoints: Counter[str] = Counter()
        self.busy = 0
        self.seconds: dict[str, float] = {}

    def free(self) -> int:
        return self.total - self.busy

    def take(self, tenant: str, endpoint: str) -> str | None:
        """Take a slot; or say which bound is full ("total", "tenant" or "endpoint") and take nothing."""
        if self.busy >= self.total:
            return "total"
        if self.endpoints[endpoint] >= self.per_endpoint:
            return "endpoint"
        if self.tenants[tenant] >= self.per_tenant:
            return "tenant"
        self.busy += 1
        self.tenants[tenant] += 1
        self.endpoints[endpoint] += 1
        return None

    def give(self, tenant: str, endpoint: str, seconds: float | None) -> None:
        """Give a slot back; `seconds` (how long the attempt took) feeds the endpoint's expected duration."""
        self.busy -= 1
        for counts, key in ((self.tenants, tenant), (self.endpoints, endpoint)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]
        if seconds is not None:
            if len(self.seconds) > _REMEMBERED:
                self.seconds.clear()
            before = self.seconds.get(endpoint, seconds)
            self.seconds[endpoint] = before + _SMOOTHING * (seconds - before)

    def wait_seconds(self, full: str, endpoint: str, waiting: int, least: float, most: float) -> float:
        """How long the `waiting`-th delivery held back by a full `full` bound should wait for its turn."""
        bound = self.per_endpoint if full == "endpoint" else self.per_tenant
        turns = math.ceil(waiting / max(1, bound))
        return min(most, max(least, turns * self.seconds.get(endpoint, least)))
