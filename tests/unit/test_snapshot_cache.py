"""The snapshot cache's bookkeeping (projector/snapshots.py): bounded, least recently written out first, and the
accounts a batch quarantined forgotten. That it is never trusted is tests/integration/test_snapshot_cache.py."""

from domain.codec import encode_account
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT
from projector.snapshots import MIN_PER_PARTITION, SnapshotCache, per_partition
from store.projection import SnapshotWrite


def write(customer: str) -> SnapshotWrite:
    state = encode_account(EMPTY_ACCOUNT)
    return SnapshotWrite(AccountRef("t", "e", customer), "1-0", state, account=EMPTY_ACCOUNT)


def test_the_cache_keeps_the_most_recently_written_accounts_up_to_its_limit() -> None:
    cache = SnapshotCache(2)
    cache.wrote([write("a"), write("b")])
    cache.wrote([write("a"), write("c")])  # b is now the least recently written
    assert [ref.customer_id for ref in cache.kept] == ["a", "c"]
    kept = cache.kept[AccountRef("t", "e", "a")]
    assert kept.decoded is EMPTY_ACCOUNT and kept.state == encode_account(EMPTY_ACCOUNT)


def test_a_quarantined_account_is_forgotten_and_a_write_without_its_account_is_not_kept() -> None:
    cache = SnapshotCache(10)
    cache.wrote([write("a"), SnapshotWrite(AccountRef("t", "e", "b"), "1-0", b"x")])
    cache.wrote([], dropped=[AccountRef("t", "e", "a")])
    assert not cache.kept


def test_a_projector_holding_many_partitions_keeps_a_bounded_number_in_all() -> None:
    assert per_partition(16) * 16 <= 8_192
    assert per_partition(256) * 256 <= 8_192 and per_partition(100_000) == MIN_PER_PARTITION
