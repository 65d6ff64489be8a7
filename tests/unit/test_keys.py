"""The key builder is injective: two different (builder, arguments) never build the same Redis key, and a caller's
`{`/`}` never moves a key to another hash slot. Ordinary ids keep the keys they always had."""

import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.identity import AccountRef
from store.keys import Keys, component, notice_key

PARTITIONS = 16
WORDS = ["", "x", "s14", "seen", "event", "snap", "log", "lock", "feed", "rates", "delivery", "endpoints", "tx",
         "topup", "wallet", "%", "%25", "%3A", ":", "{p001}", "{", "}", "{}", "é", "\x00", "\ud800", "a b", "*"]
# Few characters, so that the shuffles an attacker would try (moving a `:` from one id into the next) come up often.
ids = st.one_of(st.sampled_from(WORDS), st.text(alphabet="xs:{}%é1 ", max_size=6), st.text(max_size=8),
                st.lists(st.sampled_from(WORDS), min_size=2, max_size=4).map(":".join))
refs = st.builds(AccountRef, ids, ids, ids)
partitions = st.integers(0, PARTITIONS - 1)
generations = st.integers(1, 3)

Build = Callable[..., str]
Call = tuple[str, tuple[Any, ...]]
BUILDERS: dict[str, tuple[Build, st.SearchStrategy[tuple[Any, ...]]]] = {
    "log": (lambda k, r: k.log(r), st.tuples(refs)),
    "contended": (lambda k, r: k.contended(r), st.tuples(refs)),
    "dedup": (lambda k, r, s, key: k.dedup(r, s, key), st.tuples(refs, ids, ids)),
    "wallet_dedup": (lambda k, r, s, key, w: k.dedup(r, s, key, w), st.tuples(refs, ids, ids, ids)),
    "dedup_buckets": (lambda k, r, s, w: k.dedup_buckets(r, s, [w])[0],
                      st.tuples(refs, st.integers(0, 7), st.integers(0, 30_000))),
    "dedup_buckets_v1": (lambda k, r, s, w: k.dedup_buckets_v1(r, s, [w])[0],
                         st.tuples(refs, st.integers(0, 7), st.integers(0, 30_000))),
    "rate_pointers": (lambda k, p, t, e: k.rate_pointers(p, t, e), st.tuples(partitions, ids, ids)),
    "rate_card": (lambda k, t, e: k.rate_card(t, e), st.tuples(ids, ids)),
    "rate_card_lock": (lambda k, t, e: k.rate_card_lock(t, e), st.tuples(ids, ids)),
    "webhook_endpoints": (lambda k, t, e: k.webhook_endpoints(t, e), st.tuples(ids, ids)),
    "webhook_deliveries": (lambda k, t, e: k.webhook_deliveries(t, e), st.tuples(ids, ids)),
    "webhook_delivery": (lambda k, d: k.webhook_delivery(d), st.tuples(ids)),
    "wallet_index": (lambda k, w: k.wallet_index(w), st.tuples(ids)),
    "customer": (lambda k, r: k.customer(r), st.tuples(refs)),
    "customer_pointer": (lambda k, c: k.customer_pointer(c), st.tuples(ids)),
    "customers": (lambda k, t, e: k.customers(t, e), st.tuples(ids, ids)),
    "wallets": (lambda k, t, e: k.wallets(t, e), st.tuples(ids, ids)),
    **{name: (lambda k, g, r, name=name: getattr(Keys(PARTITIONS, generation=g), name)(r),
              st.tuples(generations, refs)) for name in ["snapshot", "ledger", "ledger_ids"]},
    **{name: (lambda k, p, name=name: getattr(k, name)(p), st.tuples(partitions))
       for name in ["feed", "accounts", "notices", "notices_emitted", "lease", "fence", "rate_blobs",
                    "webhook_checkpoint", "retention_floor", "halted", "operations",
                    "archive_lease", "archive_fence", "archive_segments", "archive_through", "archive_pending"]},
    **{name: (lambda k, g, p, name=name: getattr(Keys(PARTITIONS, generation=g), name)(p),
              st.tuples(generations, partitions)) for name in ["checkpoint", "folded", "due", "quarantined"]},
    **{name: (lambda k, name=name: getattr(k, name)(), st.just(()))
       for name in ["webhook_due", "webhook_finished", "webhook_lease", "webhook_fence", "projectors",
                    "generation_pointer", "meta"]},
}
WEBHOOK_SENDER = {"webhook_checkpoint", "webhook_delivery", "webhook_deliveries", "webhook_due", "webhook_finished",
                  "webhook_lease", "webhook_fence"}
"""The webhook sender's state: one slot (`{webhooks}`), so each fenced step of the sender is one script."""
calls: st.SearchStrategy[Call] = st.sampled_from(sorted(BUILDERS)).flatmap(
    lambda name: BUILDERS[name][1].map(lambda args: (name, args)))


def build(call: Call) -> str:
    name, args = call
    return BUILDERS[name][0](Keys(PARTITIONS), *args)


def hash_tag(key: str) -> str | None:
    """What Redis hashes instead of the whole key: the content of the first `{...}`, if not empty."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start >= 0 and end > start + 1 else None


def test_every_builder_of_keys_py_is_covered() -> None:
    public = {n for n in dir(Keys) if not n.startswith("_") and callable(getattr(Keys, n))} - {"partition_of",
                                                                       "moved_webhook_key", "moved_webhook_patterns"}
    assert public - {"dedup"} - set(BUILDERS) == set(), "add every new key builder to BUILDERS"


@settings(max_examples=600, deadline=None)
@given(st.lists(calls, min_size=2, max_size=8, unique=True))
def test_different_calls_never_build_the_same_key(batch: list[Call]) -> None:
    built: dict[str, Call] = {}
    for call in batch:
        key = build(call)
        assert built.setdefault(key, call) == call, f"{call} and {built[key]} share {key!r}"


@settings(max_examples=1000, deadline=None)
@given(refs, ids, ids)
def test_a_dedup_marker_is_never_another_customers_snapshot_or_log(ref: AccountRef, scope: str, key: str) -> None:
    keys = Keys(PARTITIONS)
    marker = keys.dedup(ref, scope, key)
    other = AccountRef(ref.tenant_id, ref.environment_id, f"{ref.customer_id}:seen:{scope}")
    assert marker not in {keys.snapshot(other), keys.log(other), keys.dedup(other, scope, key)}


@settings(max_examples=1000, deadline=None)
@given(calls)
def test_a_callers_braces_never_change_a_keys_hash_slot(call: Call) -> None:
    key = build(call)
    _, args = call
    ref = next((a for a in args if isinstance(a, AccountRef)), None)
    numbers = [a for a in args if isinstance(a, int)]
    partition = Keys(PARTITIONS).partition_of(ref) if ref else numbers[-1] if numbers else None
    if call[0] in WEBHOOK_SENDER:
        assert hash_tag(key) == "webhooks"
        return
    assert hash_tag(key) == (None if partition is None else f"p{partition:03d}")


@settings(max_examples=300, deadline=None)
@given(ids, ids, st.lists(ids, min_size=1, max_size=3))
def test_a_notice_key_splits_back_into_what_it_was_built_from(tenant: str, environment: str, parts: list[str]) -> None:
    key = notice_key(tenant, environment, *parts)
    assert [unquote(p, errors="surrogatepass") for p in key.split(":")] == [tenant, environment, *parts]


@settings(deadline=None)
@given(st.text())
def test_an_encoded_component_holds_no_separator_brace_or_bare_percent(value: str) -> None:
    encoded = component(value)
    assert not {":", "{", "}"} & set(encoded)
    assert encoded.isascii() and encoded.isprintable() and " " not in encoded
    assert unquote(encoded, errors="surrogatepass") == value  # it decodes back: no two values share an encoding


def test_ordinary_ids_keep_the_keys_existing_stores_hold() -> None:
    keys, ref = Keys(4), AccountRef("tenant_a", "env-a", "Cust.01~x@example.com")
    tag = f"tally:{{p{keys.partition_of(ref):03d}}}"
    assert keys.log(ref) == f"{tag}:tenant_a:env-a:Cust.01~x@example.com:log"
    assert keys.snapshot(ref) == f"{tag}:tenant_a:env-a:Cust.01~x@example.com:snap"
    assert keys.dedup(ref, "event", "e-1") == f"{tag}:tenant_a:env-a:Cust.01~x@example.com:seen:event:e-1"
    assert keys.dedup(ref, "topup", "k1", "wallet_01") == (
        f"{tag}:tenant_a:env-a:Cust.01~x@example.com:seen:topup:wallet_01:k1")
    assert keys.rate_card("tenant_a", "env-a") == "tally:ratecard:tenant_a:env-a"
    assert keys.wallet_index("wallet_01J") == "tally:wallet:wallet_01J"
    assert notice_key("tenant_a", "env-a", "wallet_1", "tx", "wtx_1") == "tenant_a:env-a:wallet_1:tx:wtx_1"


def test_the_attack_of_issue_8_builds_two_keys() -> None:
    keys = Keys(4)
    attacker, victim = AccountRef("t", "e", "x"), AccountRef("t", "e", "x:seen:event:s14")
    assert keys.dedup(attacker, "event", "s14:snap") != keys.snapshot(victim)
    assert keys.dedup(victim, "event", "s14:snap").endswith(":x%3Aseen%3Aevent%3As14:seen:event:s14%3Asnap")


def test_layout_3s_webhook_sender_keys_move_under_one_hash_tag_and_nothing_else_moves() -> None:
    keys = Keys(4)
    old = {"tally:webhooks:lease": keys.webhook_lease(), "tally:webhooks:fence": keys.webhook_fence(),
           "tally:webhooks:due": keys.webhook_due(), "tally:webhooks:finished": keys.webhook_finished(),
           "tally:webhooks:delivery:msg_1": keys.webhook_delivery("msg_1"),
           "tally:webhooks:delivery:endpoints": keys.webhook_delivery("endpoints"),
           "tally:webhooks:t%3Ax:e:deliveries": keys.webhook_deliveries("t:x", "e"),
           "tally:{p003}:alerts:webhooks-checkpoint": keys.webhook_checkpoint(3)}
    assert {name: keys.moved_webhook_key(name) for name in old} == old
    assert keys.webhook_checkpoint(3) == "tally:{webhooks}:checkpoint:p003"
    kept = [keys.webhook_endpoints("t", "e"), keys.notices(3), keys.checkpoint(3), keys.meta(), keys.projectors(),
            "tally:{p004}:alerts:webhooks-checkpoint", keys.log(AccountRef("webhooks", "e", "c"))]
    assert [keys.moved_webhook_key(name) for name in kept] == [None] * len(kept)




def test_remembered_account_prefixes_belong_to_their_keys() -> None:
    """Prefixes are remembered per (keys, account): stores of other partition counts or prefixes never share one."""
    ref = AccountRef("tenant", "env", "cust {x}")
    stores = (Keys(16), Keys(256), Keys(16, prefix="other"), Keys(16, generation=2))
    crc = zlib.crc32("\x1f".join(["tenant", "env", "cust {x}"]).encode())
    expected = [f"{keys.prefix}:{{p{crc % keys.partitions:03d}}}:tenant:env:cust%20%7Bx%7D:log" for keys in stores]
    for _ in range(2):
        assert [keys.log(ref) for keys in stores] == expected


@given(st.lists(st.one_of(ids, st.sampled_from(["wallet_1", "tx", "t-1.a", ""])), min_size=2, max_size=5))
def test_a_notice_key_encodes_each_part_as_component_does(parts: list[str]) -> None:
    """Parts that are all plain are checked in one match: the key is the one encoding each part gives."""
    assert notice_key(*parts) == ":".join(component(part) for part in parts)
