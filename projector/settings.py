"""What a projector runs with: its settings, and how often it renews its leases."""

from datetime import timedelta

import msgspec

# A lease is renewed (and the membership heartbeat sent) once a third of its TTL has passed: two renewals in a row
# may fail (a Redis blip, a slow batch) before it expires under the holder.
RENEWALS_PER_TTL = 3


class ProjectorSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Built from the process's Settings by cli/components.py (the defaults live there, once)."""

    holder: str
    batch_size: int
    block_ms: int
    lease_ttl_ms: int
    period_grace_seconds: int
    clock_interval_ms: int
    trim_every_batches: int

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.period_grace_seconds)

    @property
    def renew_every_s(self) -> float:
        return self.lease_ttl_ms / 1000 / RENEWALS_PER_TTL
