"""The hot routes answer alike on both ways of serving them: the same request through the fast path and through
the FastAPI route built from the same declaration (api/hot.py) gives the same status, the same relevant headers and
the same body, for a valid request and for each class of error (bad JSON, bad body, undeclared query parameter,
out-of-bounds value, missing or unknown key, not found, wrong method, oversized body)."""

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.responses import Response

from api import routetable
from domain import bounds
from tests.support.harness import API_KEY, OTHER_KEY, ManualClock, running_app

HEADERS = ("content-type", "allow", "retry-after", "connection")
EVENT = {"event_name": "api_call", "external_customer_id": "cust_parity", "event_id": "e-parity"}
UNNAMED = {"event_name": "api_call", "external_customer_id": "cust_parity"}  # the bulk answer names no event id
Case = tuple[str, str, str, Mapping[str, str], Any]  # name, method, url, headers, JSON body (bytes: sent as is)


def ingest_cases() -> list[Case]:
    key = {"x-api-key": API_KEY}
    return [
        ("event", "POST", "/v1/events", key, EVENT),
        ("event again (a duplicate)", "POST", "/v1/events", key, EVENT),
        ("bad JSON", "POST", "/v1/events", key, b'{"event_name": '),
        ("not an object", "POST", "/v1/events", key, b"[]"),
        ("missing field", "POST", "/v1/events", key, {"external_customer_id": "c"}),
        ("property integer over 64 bits", "POST", "/v1/events", key, {**EVENT, "properties": {"n": 2**64}}),
        ("timestamp far in the future", "POST", "/v1/events", key, {**EVENT, "timestamp": "2199-01-01T00:00:00Z"}),
        ("undeclared query", "POST", "/v1/events?dry_run=1", key, EVENT),
        ("undeclared query, no key", "POST", "/v1/events?dry_run=1", {}, EVENT),
        ("no key", "POST", "/v1/events", {}, EVENT),
        ("unknown key", "POST", "/v1/events", {"x-api-key": "nobody"}, EVENT),
        ("wrong method", "GET", "/v1/events", key, None),
        ("oversized", "POST", "/v1/events", key, b" " * ((1 << 20) + 1)),
        ("bulk", "POST", "/v1/events/bulk", key, {"events": [UNNAMED, UNNAMED]}),
        ("bulk, one invalid", "POST", "/v1/events/bulk", key, {"events": [UNNAMED, {"event_name": "x"}]}),
        ("bulk, empty", "POST", "/v1/events/bulk", key, {"events": []}),
        ("bulk, bad JSON", "POST", "/v1/events/bulk", key, b"{"),
        ("bulk, too deep", "POST", "/v1/events/bulk", key, b'{"events": [' + b"[" * 10000 + b"]" * 10000 + b"]}"),
        ("bulk, undeclared query", "POST", "/v1/events/bulk?x=1", key, {"events": [UNNAMED]}),
        ("bulk, no key", "POST", "/v1/events/bulk", {}, {"events": [UNNAMED]}),
        ("bulk, wrong method", "PUT", "/v1/events/bulk", key, {"events": [UNNAMED]}),
    ]


def balance_cases(wallet_id: str) -> list[Case]:
    key, url = {"x-api-key": API_KEY}, f"/v1/wallets/{wallet_id}/balance/real-time"
    cases = [(f"balance {query or 'plain'}", "GET", f"{url}{query}", key, None) for query in (
        "", "?from_cache=true", "?from_cache=YES", "?from_cache=0", "?expand=credits_available_breakdown",
        "?expand=", "?expand=credits_available_breakdown&from_cache=on", "?from_cache=maybe", "?from_cache=",
        "?expand=everything", "?x-max-live=5", "?from_cache=true&from_cache=nope")]
    return [*cases,
            ("no key", "GET", url, {}, None),
            ("unknown key", "GET", url, {"x-api-key": "nobody"}, None),
            ("another tenant's wallet", "GET", url, {"x-api-key": OTHER_KEY}, None),
            ("no such wallet", "GET", "/v1/wallets/w_none/balance/real-time", key, None),
            ("id with a control character", "GET", "/v1/wallets/a%01b/balance/real-time", key, None),
            ("id too long", "GET", f"/v1/wallets/{'x' * (bounds.ID_MAX_LENGTH + 1)}/balance/real-time", key, None),
            ("wrong method", "POST", url, key, {}),
            ("head", "HEAD", url, key, None)]


async def send(client: httpx.AsyncClient, case: Case) -> httpx.Response:
    _, method, url, headers, body = case
    content = body if isinstance(body, bytes) else None
    return await client.request(method, url, headers=headers, content=content,
                                json=None if content is not None or body is None else body)


def answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    return response.status_code, {h: response.headers[h] for h in HEADERS if h in response.headers}, response.content


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the fast path answered: proof that each app served the hot routes the way the test says."""
    calls: list[str] = []
    respond: Callable[..., Awaitable[Response]] = routetable.respond

    async def counted(*args: Any) -> Response:
        calls.append(args[1]["path"])
        return await respond(*args)

    monkeypatch.setattr("api.fastpath.respond", counted)
    return calls


def hot(case: Case) -> bool:
    """Whether the fast path answers the case: a hot route's method and path, and a body BodyLimits lets through."""
    method, path = case[1], case[2].partition("?")[0]
    matched = ((method == "POST" and path in ("/v1/events", "/v1/events/bulk"))
               or (method == "GET" and path.endswith("/balance/real-time")))
    return matched and case[0] != "oversized"


async def test_the_fast_path_and_the_fastapi_route_answer_every_case_alike(clean_redis: str,
                                                                           fast_calls: list[str]) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    statuses = set()
    async with running_app(clean_redis, projector=False, clock=clock) as fast, \
            running_app(clean_redis, projector=False, clock=clock, fast_path=False) as fastapi:
        del fast.headers["x-api-key"], fastapi.headers["x-api-key"]  # each case sends its own
        wallet = {"customer_id": "cust_parity", "currency": "USD", "initial_credits_to_load": "5"}
        created = await fast.post("/v1/wallets", headers={"x-api-key": API_KEY}, json=wallet)
        assert created.status_code == 200, created.text
        for case in ingest_cases() + balance_cases(created.json()["id"]):
            before = len(fast_calls)
            through_fast = answer(await send(fast, case))
            served_fast = len(fast_calls) - before
            through_fastapi = answer(await send(fastapi, case))
            assert through_fast == through_fastapi, case[0]
            assert (served_fast, len(fast_calls) - before) == (int(hot(case)), int(hot(case))), case[0]
            statuses.add(through_fast[0])
    assert statuses == {200, 202, 400, 401, 404, 405, 413}, statuses  # every class of answer was compared
