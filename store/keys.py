"""Every Redis key tally uses is built here and nowhere else.

Keys of one partition share the hash tag `{pNN}`, so one script can touch them atomically and a Redis Cluster
keeps them on one shard. Only the wallet index and the store's metadata live outside partitions.
"""

import zlib

import msgspec

from domain.identity import AccountRef

PREFIX = "tally"


class Keys(msgspec.Struct, frozen=True):
    """`generation` names the projection version that snapshots, checkpoints and schedules belong to."""

    partitions: int = 16
    prefix: str = PREFIX
    generation: int = 1

    @property
    def _gen(self) -> str:
        return "" if self.generation == 1 else f".g{self.generation}"

    def partition_of(self, ref: AccountRef) -> int:
        return zlib.crc32(f"{ref.tenant_id}\x1f{ref.environment_id}\x1f{ref.customer_id}".encode()) % self.partitions

    def _tag(self, partition: int) -> str:
        return f"{self.prefix}:{{p{partition:03d}}}"

    def _account(self, ref: AccountRef) -> str:
        return f"{self._tag(self.partition_of(ref))}:{ref.tenant_id}:{ref.environment_id}:{ref.customer_id}"

    def log(self, ref: AccountRef) -> str:
        """The customer's stream: its whole history, never trimmed."""
        return f"{self._account(ref)}:log"

    def snapshot(self, ref: AccountRef) -> str:
        """Hash: p = position folded up to, s = encoded Account, t = when folded, q = why it is quarantined."""
        return f"{self._account(ref)}:snap{self._gen}"

    def dedup(self, ref: AccountRef, scope: str, key: str) -> str:
        """Seen-marker of an event id or idempotency key, with a TTL (the dedup window)."""
        return f"{self._account(ref)}:seen:{scope}:{key}"

    def feed(self, partition: int) -> str:
        """The partition's feed stream: every event of its customers, in append order."""
        return f"{self._tag(partition)}:feed"

    def accounts(self, partition: int) -> str:
        """Set of the encoded refs of every account with events in the partition."""
        return f"{self._tag(partition)}:accounts"

    def checkpoint(self, partition: int) -> str:
        """The feed position the partition's snapshots are folded up to."""
        return f"{self._tag(partition)}:checkpoint{self._gen}"

    def folded(self, partition: int) -> str:
        """How many feed entries the partition's projection has folded (lag = entries added - this)."""
        return f"{self._tag(partition)}:folded{self._gen}"

    def alerts(self, partition: int) -> str:
        """Stream of alert transitions (each written once), for webhooks and other consumers."""
        return f"{self._tag(partition)}:alerts"

    def alerts_emitted(self, partition: int) -> str:
        """Sorted set of the alert transition keys already written, scored by when (ms)."""
        return f"{self._tag(partition)}:alerts:emitted"

    def lease(self, partition: int) -> str:
        """`holder#token` of the projector that owns the partition, with a TTL."""
        return f"{self._tag(partition)}:lease"

    def fence(self, partition: int) -> str:
        """Counter handing out fencing tokens for the partition's lease."""
        return f"{self._tag(partition)}:fence"

    def due(self, partition: int) -> str:
        """Sorted set of accounts scored by when the clock next has work for them (ms): closes, expiries."""
        return f"{self._tag(partition)}:due{self._gen}"

    def rate_pointers(self, partition: int, tenant_id: str, environment_id: str) -> str:
        """Hash event_name -> digest of the rate card versions for it (a copy in every partition)."""
        return f"{self._tag(partition)}:rates:{tenant_id}:{environment_id}"

    def rate_blobs(self, partition: int) -> str:
        """Hash digest -> encoded price versions; content-addressed, never rewritten."""
        return f"{self._tag(partition)}:rateblobs"

    def rate_card(self, tenant_id: str, environment_id: str) -> str:
        """Hash price id -> encoded PriceVersion: the tenant's rate card as created through the API."""
        return f"{self.prefix}:ratecard:{tenant_id}:{environment_id}"

    def rate_card_lock(self, tenant_id: str, environment_id: str) -> str:
        return f"{self.prefix}:ratecard:{tenant_id}:{environment_id}:lock"

    def webhook_checkpoint(self, partition: int) -> str:
        """The alerts-stream position up to which the webhook sender has queued deliveries."""
        return f"{self._tag(partition)}:alerts:webhooks-checkpoint"

    def webhook_endpoints(self, tenant_id: str, environment_id: str) -> str:
        """Hash endpoint id -> encoded endpoint, per tenant and environment."""
        return f"{self.prefix}:webhooks:{tenant_id}:{environment_id}:endpoints"

    def webhook_delivery(self, delivery_id: str) -> str:
        """Hash of one delivery: its message, endpoint, status, attempts, last error."""
        return f"{self.prefix}:webhooks:delivery:{delivery_id}"

    def webhook_deliveries(self, tenant_id: str, environment_id: str) -> str:
        """Sorted set of a tenant's delivery ids by creation time (ms), for the API."""
        return f"{self.prefix}:webhooks:{tenant_id}:{environment_id}:deliveries"

    def webhook_due(self) -> str:
        """Sorted set of pending delivery ids by next attempt time (ms)."""
        return f"{self.prefix}:webhooks:due"

    def webhook_lease(self) -> str:
        """`holder#token` of the webhook sender that owns delivery, with a TTL."""
        return f"{self.prefix}:webhooks:lease"

    def webhook_fence(self) -> str:
        """Counter handing out fencing tokens for the webhook sender's lease."""
        return f"{self.prefix}:webhooks:fence"

    def wallet_index(self, wallet_id: str) -> str:
        """Which account a wallet belongs to (written before the wallet's first event)."""
        return f"{self.prefix}:wallet:{wallet_id}"

    def projectors(self) -> str:
        """Sorted set of live projector processes, scored by their last heartbeat (ms)."""
        return f"{self.prefix}:projectors"

    def generation_pointer(self) -> str:
        """The projection generation reads and projectors use; `tally replay` moves it."""
        return f"{self.prefix}:generation"

    def retention_floor(self, partition: int) -> str:
        """While a replay runs, the feed position below which nothing may be trimmed yet."""
        return f"{self._tag(partition)}:retention-floor"

    def halted(self, partition: int) -> str:
        """Hash (position, reason, at) of the feed entry a partition's projector stopped on."""
        return f"{self._tag(partition)}:halted"

    def quarantined(self, partition: int) -> str:
        """Hash encoded account ref -> dead-letter record of the entry that account is quarantined on."""
        return f"{self._tag(partition)}:quarantined{self._gen}"

    def operations(self, partition: int) -> str:
        """Stream recording operator actions on the partition (dropped entries with their raw bytes)."""
        return f"{self._tag(partition)}:operations"

    def meta(self) -> str:
        """Store-wide settings every process must agree on (the partition count)."""
        return f"{self.prefix}:meta"
