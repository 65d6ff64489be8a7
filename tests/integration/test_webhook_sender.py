"""The webhook sender on a real Redis against real local receivers: destinations checked again at connect time
(a resolver injected to play DNS), a total deadline per attempt, and error classes that reveal nothing internal."""

import logging
import time

import pytest
from redis.asyncio import Redis

from cli.stores import free_port
from tests.support.webhook_receiver import Receiver, Route, webhook_receiver
from tests.support.webhook_sender import SECRET, add_endpoint, add_notice, deliveries, running, sender, wait_until

TENANT = ("tenant_a", "env_a")


async def settled(redis: Redis, count: int) -> list[object]:
    found = await deliveries(redis, TENANT)
    return found if len(found) >= count and all(d.status != "pending" for d in found) else []


async def test_a_host_whose_dns_turns_private_at_delivery_is_refused_and_nothing_is_sent(
    aredis: Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    asked: list[str] = []

    async def rebound(host: str, port: int) -> list[str]:  # passed registration; now answers a loopback address
        asked.append(host)
        return ["127.0.0.1"]

    with webhook_receiver({"/in": Route(SECRET, fail_first=0)}) as receiver:
        await add_endpoint(aredis, TENANT, "whe_rebound", f"http://hooks.tenant.test:{receiver.port}/in")
        await add_notice(aredis, TENANT, "n1")
        with caplog.at_level(logging.WARNING, logger="tally.webhooks"):
            async with running(sender(aredis, allow_private=False, resolve=rebound, max_attempts=1)):
                [delivery] = await wait_until(lambda: settled(aredis, 1), 10, "the delivery settled")
    assert (delivery.status, delivery.last_error, delivery.last_status) == ("dead", "refused_destination", 0)
    assert receiver.received == []
    assert asked and set(asked) == {"hooks.tenant.test"}  # resolved at delivery time, not trusted from before
    assert any("refused_destination" in r.getMessage() and "'127.0.0.1': 'loopback'" in r.getMessage()
               for r in caplog.records), "the operator log names the address and why"


async def test_the_connection_goes_to_the_address_checked_with_the_urls_host_kept(aredis: Redis) -> None:
    async def mapped(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "hooks.tenant.test" else []

    with webhook_receiver({"/in": Route(SECRET, fail_first=0)}) as receiver:
        await add_endpoint(aredis, TENANT, "whe_mapped", f"http://hooks.tenant.test:{receiver.port}/in")
        await add_notice(aredis, TENANT, "n1")
        async with running(sender(aredis, allow_private=True, resolve=mapped)):
            [delivery] = await wait_until(lambda: settled(aredis, 1), 10, "the delivery settled")
    assert (delivery.status, delivery.last_error) == ("delivered", "")
    [request] = receiver.received
    assert request.host == f"hooks.tenant.test:{receiver.port}" and request.signature_valid


async def test_the_total_deadline_cuts_a_receiver_that_dribbles_its_reply(aredis: Redis) -> None:
    deadline_ms = 600
    with webhook_receiver({"/slow": Route(SECRET, fail_first=0, dribble_s=10.0)}) as receiver:
        await add_endpoint(aredis, TENANT, "whe_slow", receiver.url("/slow"))
        await add_notice(aredis, TENANT, "n1")
        async with running(sender(aredis, timeout_ms=deadline_ms, max_attempts=1)):
            await wait_until(lambda: receiver.received, 10, "the receiver got the request")
            arrived = receiver.received[0].at
            [delivery] = await wait_until(lambda: settled(aredis, 1), 10, "the attempt ended")
            ended = time.monotonic()
    assert (delivery.status, delivery.last_error) == ("dead", "timeout")
    assert ended - arrived < deadline_ms / 1000 + 0.5, "the reply was read past the deadline"


async def test_tenants_see_a_class_that_does_not_tell_an_open_internal_port_from_a_closed_one(
    aredis: Redis, redis_url: str,
) -> None:
    open_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])  # Redis: open, but not HTTP
    routes = {"/fail": Route(SECRET, fail_first=None)}
    with webhook_receiver(routes) as receiver:
        urls = {"whe_closed": f"http://127.0.0.1:{free_port()}/", "whe_open": f"http://127.0.0.1:{open_port}/",
                "whe_500": receiver.url("/fail"), "whe_ok": _ok_url(receiver)}
        for endpoint_id, url in urls.items():
            await add_endpoint(aredis, TENANT, endpoint_id, url)
        await add_notice(aredis, TENANT, "n1")
        async with running(sender(aredis, max_attempts=1, timeout_ms=2000)):
            found = await wait_until(lambda: settled(aredis, 4), 15, "four deliveries settled")
    errors = {d.endpoint_id: (d.last_error, d.last_status) for d in found}
    assert errors == {"whe_closed": ("connection_failed", 0), "whe_open": ("connection_failed", 0),
                      "whe_500": ("http_500", 500), "whe_ok": ("", 200)}


def _ok_url(receiver: Receiver) -> str:
    receiver.routes["/ok"] = Route(SECRET, fail_first=0)
    return receiver.url("/ok")


async def test_a_deleted_endpoint_ends_its_delivery_with_a_class(aredis: Redis) -> None:
    await add_endpoint(aredis, TENANT, "whe_gone", "http://127.0.0.1:1/")
    await add_notice(aredis, TENANT, "n1")
    webhook_sender = sender(aredis)
    await webhook_sender.keep_lease()
    await webhook_sender.queue_new()
    await webhook_sender.webhooks.delete_endpoint(*TENANT, "whe_gone")
    async with running(webhook_sender):
        [delivery] = await wait_until(lambda: settled(aredis, 1), 10, "the delivery settled")
    assert (delivery.status, delivery.last_error) == ("dead", "endpoint_deleted")
