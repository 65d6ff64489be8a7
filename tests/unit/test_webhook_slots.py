"""Webhook concurrency bounds: a slow endpoint's backlog takes only its own slots, and every other tenant's due
delivery starts in the same round; held-back deliveries wait for their expected turn, at most one deadline."""

from redis.asyncio import Redis

from projector.slots import Slots
from projector.webhooks import WebhookSender
from store.keys import Keys
from store.webhooks import Delivery, Webhooks
from tests.support.components import sender_settings

NOW_MS = 1_000_000


def test_each_bound_is_kept_and_a_slot_given_back_is_free_again() -> None:
    slots = Slots(total=3, per_tenant=2, per_endpoint=1)
    assert slots.take("t1", "e1") is None
    assert slots.take("t1", "e1") == "endpoint"
    assert slots.take("t1", "e2") is None
    assert slots.take("t1", "e3") == "tenant"
    assert slots.take("t2", "e4") is None
    assert slots.take("t3", "e5") == "total"
    slots.give("t1", "e1", 0.5)
    assert slots.free() == 1 and slots.take("t1", "e1") is None


def test_the_wait_for_a_turn_follows_the_endpoints_recent_attempt_times_within_bounds() -> None:
    slots = Slots(total=10, per_tenant=10, per_endpoint=2)
    slots.take("t", "fast")
    slots.give("t", "fast", 0.01)
    slots.take("t", "slow")
    slots.give("t", "slow", 5.0)
    assert slots.wait_seconds("endpoint", "fast", waiting=6, least=0.2, most=5.0) == 0.2
    assert slots.wait_seconds("endpoint", "slow", waiting=1, least=0.2, most=5.0) == 5.0
    assert slots.wait_seconds("endpoint", "unknown", waiting=1, least=0.2, most=5.0) == 0.2


def _delivery(n: int, tenant: str, endpoint: str) -> Delivery:
    return Delivery(id=f"msg_{tenant}_{n}", endpoint_id=endpoint, tenant_id=tenant, environment_id="env",
                    event_type="x", payload="{}")


def test_a_slow_endpoints_backlog_at_the_head_of_the_queue_does_not_hold_back_another_tenant() -> None:
    settings = sender_settings("h", timeout_ms=5000, poll_ms=200, concurrency=64, concurrency_per_tenant=8,
                               concurrency_per_endpoint=2)
    webhook_sender = WebhookSender(Webhooks(Redis(), Keys(4)), settings, client=None)  # type: ignore[arg-type]
    for _ in range(2):  # the slow endpoint is known to take the whole deadline
        webhook_sender.slots.take("slow\x1fenv", "whe_slow")
        webhook_sender.slots.give("slow\x1fenv", "whe_slow", 5.0)
    backlog = [_delivery(n, "slow", "whe_slow") for n in range(200)]
    starting, moves = webhook_sender.plan([*backlog, _delivery(0, "fine", "whe_fine")], NOW_MS)
    assert [d.id for d in starting] == ["msg_slow_0", "msg_slow_1", "msg_fine_0"]
    claims = {d.id: moves[d.id] for d in starting}
    assert set(claims.values()) == {NOW_MS + 5000 + 2000}  # claimed until the deadline (+ grace) passes
    held = [moves[d.id] - NOW_MS for d in backlog[2:]]
    assert all(200 <= wait <= 5000 for wait in held) and held[-1] == 5000  # out of the way, at most a deadline
