"""Every Redis key tally uses is built here and nowhere else.

Keys of one partition share the hash tag `{pNNN}`, so one script can touch them atomically and a Redis Cluster
keeps them on one shard. The webhook sender's state (deliveries, queue, lease, fence and its per-partition checkpoints)
shares the hash tag `{webhooks}`, so each of its fenced steps is one script in one slot. Outside both (no hash tag,
each only ever touched alone) live: the wallet index, each tenant's rate card as created through the API (and its
lock), the webhook endpoints, the projector membership set, the generation pointer and the store's metadata.

A key is `:`-separated components. Every component a caller controls (tenant, environment, customer, dedup scope and
key, wallet id, delivery id, ...) goes through `component`: ASCII letters, digits and SAFE stay as they are, every
other character is written as `%XX` per UTF-8 byte. An encoded component never holds `:`, `{`, `}` or a bare `%`,
so a key splits back into exactly the components it was built from (two different tuples never share a key, across
all builders), and a caller's `{`/`}` can never move a key to another hash slot. Ordinary ids keep their old keys.
"""

import re
import zlib
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import quote

import msgspec

from domain.identity import AccountRef

PREFIX = "tally"
SAFE = "-._~@+=/,;!$&()|^#<>`"
"""Kept as is besides letters and digits. Never `%` (the escape), `:` (the separator), `{`/`}` (hash tags), space,
quotes, glob characters (`*?[]\\`) or anything outside printable ASCII."""
ACCOUNTS_CACHED = 2**15
"""Account key prefixes remembered (store/keys.py `_account_prefix`: ~200 bytes each)."""
_PLAIN = re.compile(r"[A-Za-z0-9" + re.escape(SAFE) + r"]*").fullmatch


def component(value: str) -> str:
    """One caller-controlled key component, encoded so it cannot be confused with a separator or a hash tag."""
    if _PLAIN(value):
        return value
    return quote(value, safe=SAFE, errors="surrogatepass")


def notice_key(tenant_id: str, environment_id: str, *parts: str) -> str:
    """The key a notices-stream entry is emitted under once (a member of `Keys.notices_emitted`), encoded likewise
    (parts that are all plain, the usual case, are checked in one match)."""
    every = (tenant_id, environment_id, *parts)
    if _PLAIN("".join(every)):
        return ":".join(every)
    return ":".join(component(part) for part in every)


class Keys(msgspec.Struct, frozen=True):
    """`generation` names the projection version that snapshots, checkpoints and schedules belong to."""

    partitions: int = 16
    prefix: str = PREFIX
    generation: int = 1

    @property
    def _gen(self) -> str:
        return "" if self.generation == 1 else f".g{self.generation}"

    def partition_of(self, ref: AccountRef) -> int:
        return _partition(self.partitions, ref)

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError("the key prefix may not hold { or }: it would change every key's hash slot")

    def _tag(self, partition: int) -> str:
        return f"{self.prefix}:{{p{partition:03d}}}"

    def _account(self, ref: AccountRef) -> str:
        return _account_prefix(self, ref)

    def log(self, ref: AccountRef) -> str:
        """The customer's stream: its history after what the archive holds (store/archive trims it)."""
        return f"{self._account(ref)}:log"

    def snapshot(self, ref: AccountRef) -> str:
        """Hash: p = position folded up to, s = encoded Account, t = when folded, q = why it is quarantined."""
        return f"{self._account(ref)}:snap{self._gen}"

    def ledger(self, ref: AccountRef) -> str:
        """Hash `wallet:seq` -> encoded ledger entry: the account's ledger entries folded into the snapshot."""
        return f"{self._account(ref)}:ledger{self._gen}"

    def ledger_ids(self, ref: AccountRef) -> str:
        """Hash `wallet:transaction id` -> seq of its entry in `ledger` (finding an entry by id)."""
        return f"{self._account(ref)}:ledger-ids{self._gen}"

    def dedup(self, ref: AccountRef, scope: str, key: str, wallet_id: str | None = None) -> str:
        """Seen-marker of an idempotency key (of one wallet, if given) and its value, with a TTL (the dedup window);
        earlier versions wrote one for every event id too (still read, see store/dedup.py)."""
        wallet = "" if wallet_id is None else f"{component(wallet_id)}:"
        return f"{self._account(ref)}:seen:{component(scope)}:{wallet}{component(key)}"

    def contended(self, ref: AccountRef) -> str:
        """Marker, with a short TTL, that an API process lost a race on the customer stream: the winners stop
        serving the account from memory (store/lua/append_batch.lua sets and reports it)."""
        return f"{self._account(ref)}:contended"

    def dedup_buckets(self, ref: AccountRef, shard: int, weeks: Sequence[int]) -> list[str]:
        """Hashes of 12-byte digests of the bare ids (usage and clock event ids) the customer sent in each ISO week
        (weeks since the one of 1970-01-01) whose digest falls in `shard`; each expires as a whole one dedup window
        after its week ends (store/dedup.py)."""
        account = self._account(ref)
        return [f"{account}:ids2:{week}:{shard}" for week in weeks]

    def dedup_buckets_v1(self, ref: AccountRef, shard: int, weeks: Sequence[int]) -> list[str]:
        """The same with 16-byte digests in 8 shards, as earlier versions wrote them: still read, never written, gone
        one dedup window (plus a week at most) after an upgrade (store/dedup.py)."""
        account = self._account(ref)
        return [f"{account}:ids:{week}:{shard}" for week in weeks]

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

    def notices(self, partition: int) -> str:
        """Stream of notices (domain/notices.py: alert transitions and new transactions, each written once), for
        webhooks and other consumers; store/retention.py trims it. Its key still says `alerts`, as first written."""
        return f"{self._tag(partition)}:alerts"

    def notices_emitted(self, partition: int) -> str:
        """Sorted set of the notice keys already written, scored by when (ms); a key leaves with its notices-stream
        entry (store/retention.py)."""
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
        return f"{self._tag(partition)}:rates:{_tenant(tenant_id, environment_id)}"

    def rate_blobs(self, partition: int) -> str:
        """Hash digest -> encoded price versions; content-addressed, never rewritten."""
        return f"{self._tag(partition)}:rateblobs"

    def rate_card(self, tenant_id: str, environment_id: str) -> str:
        """Hash price id -> encoded PriceVersion: the tenant's rate card as created through the API."""
        return f"{self.prefix}:ratecard:{_tenant(tenant_id, environment_id)}"

    def rate_card_lock(self, tenant_id: str, environment_id: str) -> str:
        return f"{self.prefix}:ratecard:{_tenant(tenant_id, environment_id)}:lock"

    @property
    def _webhooks(self) -> str:
        return f"{self.prefix}:{{webhooks}}"

    def webhook_checkpoint(self, partition: int) -> str:
        """The partition's notices-stream position up to which the webhook sender has queued deliveries (in the
        sender's slot: it moves in the same step that queues them)."""
        return f"{self._webhooks}:checkpoint:p{partition:03d}"

    def webhook_endpoints(self, tenant_id: str, environment_id: str) -> str:
        """Hash endpoint id -> encoded endpoint, per tenant and environment."""
        return f"{self.prefix}:webhooks:{_tenant(tenant_id, environment_id)}:endpoints"

    def webhook_delivery(self, delivery_id: str) -> str:
        """Hash of one delivery: its message, endpoint, status, attempts, last error."""
        return f"{self._webhooks}:delivery:{component(delivery_id)}"

    def webhook_deliveries(self, tenant_id: str, environment_id: str) -> str:
        """Sorted set of a tenant's delivery ids by creation time (ms), for the API."""
        return f"{self._webhooks}:{_tenant(tenant_id, environment_id)}:deliveries"

    def webhook_due(self) -> str:
        """Sorted set of pending delivery ids by next attempt time (ms)."""
        return f"{self._webhooks}:due"

    def webhook_finished(self) -> str:
        """Sorted set of delivered or dead delivery ids by when they finished (ms): what retention removes."""
        return f"{self._webhooks}:finished"

    def webhook_lease(self) -> str:
        """`holder#token` of the webhook sender that owns delivery, with a TTL."""
        return f"{self._webhooks}:lease"

    def webhook_fence(self) -> str:
        """Counter handing out fencing tokens for the webhook sender's lease."""
        return f"{self._webhooks}:fence"

    def customer(self, ref: AccountRef) -> str:
        """Hash (v = version, c = encoded Customer) of the customer whose external id names the account: in the
        account's slot, so it is created, updated and deleted in one step (store/lua/customer_write.lua)."""
        return f"{self._account(ref)}:customer"

    def customer_pointer(self, customer_id: str) -> str:
        """Which account a customer's internal id names (a hint: the customer record is the truth)."""
        return f"{self.prefix}:customer:{component(customer_id)}"

    def customers(self, tenant_id: str, environment_id: str) -> str:
        """Sorted set of the tenant's customer ids by creation time (µs): what customer search walks."""
        return f"{self.prefix}:customers:{_tenant(tenant_id, environment_id)}"

    def wallet_index(self, wallet_id: str) -> str:
        """Which account a wallet belongs to (written before the wallet's first event)."""
        return f"{self.prefix}:wallet:{component(wallet_id)}"

    def wallets(self, tenant_id: str, environment_id: str) -> str:
        """Sorted set of the tenant's wallet ids by creation time (ms of created_at): what wallet lists walk. Written
        once a wallet's creation is appended (store/wallet_list.py); wallets created before it existed are absent."""
        return f"{self.prefix}:wallets:{_tenant(tenant_id, environment_id)}"

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

    def archive_lease(self, partition: int) -> str:
        """`holder#token` of the archiver that owns the partition's archive, with a TTL."""
        return f"{self._tag(partition)}:archive:lease"

    def archive_fence(self, partition: int) -> str:
        """Counter handing out fencing tokens for the partition's archive lease."""
        return f"{self._tag(partition)}:archive:fence"

    def archive_segments(self, partition: int) -> str:
        """Hash segment number -> encoded record (url, rows, digest, ranges) of each committed Parquet segment."""
        return f"{self._tag(partition)}:archive:segments"

    def archive_through(self, partition: int) -> str:
        """Hash encoded account ref -> `first|through`: the account's first and last archived stream positions."""
        return f"{self._tag(partition)}:archive:through"

    def archive_pending(self, partition: int) -> str:
        """Set of committed segment numbers whose accounts' streams are not trimmed yet."""
        return f"{self._tag(partition)}:archive:pending"

    def moved_webhook_key(self, old: str) -> str | None:
        """Where a key of the webhook sender's state as layout 3 named it (no hash tag) lives now; None for any other
        key (`tally migrate` renames them, store/relayout.py)."""
        parts = old.split(":")
        prefix, tag = self.prefix.split(":"), [f"p{p:03d}" for p in range(self.partitions)]
        n = len(prefix)
        if parts[:n] != prefix or len(parts) < n + 2:
            return None
        if parts[n] == "webhooks" and not (len(parts) == n + 4 and parts[-1] == "endpoints"):
            return ":".join([self._webhooks, *parts[n + 1:]])
        if parts[n + 1:] == ["alerts", "webhooks-checkpoint"] and parts[n].strip("{}") in tag:
            return self.webhook_checkpoint(int(parts[n].strip("{}")[1:]))
        return None

    def moved_webhook_patterns(self) -> list[str]:
        """SCAN patterns that find every key `moved_webhook_key` moves (and a few it leaves: the endpoints)."""
        return [f"{self.prefix}:webhooks:*", f"{self.prefix}:{{p*}}:alerts:webhooks-checkpoint"]

    def meta(self) -> str:
        """Store-wide settings every process must agree on (the partition count)."""
        return f"{self.prefix}:meta"


@lru_cache(maxsize=ACCOUNTS_CACHED)
def _partition(partitions: int, ref: AccountRef) -> int:
    name = f"{ref.tenant_id}\x1f{ref.environment_id}\x1f{ref.customer_id}"
    return zlib.crc32(name.encode(errors="surrogatepass")) % partitions


@lru_cache(maxsize=ACCOUNTS_CACHED)
def _account_prefix(keys: Keys, ref: AccountRef) -> str:
    """The account's key prefix: an ingested event names ~10 of its keys, each from this prefix (remembered per
    (keys, account): building it encodes three components and hashes the account for its partition)."""
    tenant = _tenant(ref.tenant_id, ref.environment_id)
    return f"{keys._tag(keys.partition_of(ref))}:{tenant}:{component(ref.customer_id)}"


@lru_cache(maxsize=4096)
def _tenant(tenant_id: str, environment_id: str) -> str:
    return f"{component(tenant_id)}:{component(environment_id)}"
