"""api/fastpath.py `HotFirst`: the hot routes answered ahead of FastAPI's middleware stack do what that stack did for
them. An unexpected error is logged, answered 500 with the ErrorResponse shape and raised on to the server, as through
FastAPI; the request log still logs each request; with FastAPI's own telemetry on, every request goes through it."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from api.app import TallyApp, create_app
from store.connect import connect
from tests.support.components import api_config
from tests.support.harness import API_KEY, PARTITIONS, PRINCIPALS

EVENT = {"event_name": "api_call", "external_customer_id": "cust_hot", "event_id": "e-hot"}


@asynccontextmanager
async def served(url: str, hot_first: bool, request_log: bool = False
                 ) -> AsyncIterator[tuple[TallyApp, httpx.AsyncClient]]:
    app = create_app(api_config(PRINCIPALS, PARTITIONS, request_log=request_log), lambda: connect(url))
    async with app.router.lifespan_context(app):
        assert app.hot_first is not None
        if not hot_first:
            app.hot_first = None
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://tally",
                                     headers={"x-api-key": API_KEY}) as client:
            yield app, client


@pytest.mark.parametrize("hot_first", [True, False])
async def test_an_unexpected_error_is_logged_and_answered_500_either_way(
    clean_redis: str, hot_first: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("api.hot.accept_event", broken)
    async with served(clean_redis, hot_first) as (_, client):
        with caplog.at_level(logging.ERROR, logger="tally.api"):
            response = await client.post("/v1/events", json=EVENT)
    assert response.status_code == 500
    assert response.json() == {"code": "internal_error", "message": "internal error", "http_status_code": 500,
                               "details": {}}
    assert [r.getMessage() for r in caplog.records if r.name == "tally.api"] == ["unhandled error"]


async def test_the_request_log_logs_hot_requests(clean_redis: str, caplog: pytest.LogCaptureFixture) -> None:
    async with served(clean_redis, hot_first=True, request_log=True) as (_, client):
        with caplog.at_level(logging.INFO, logger="tally.api"):
            response = await client.post("/v1/events?dry_run=1", json=EVENT)
    assert response.status_code == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "tally.api"]
    assert len(lines) == 1 and lines[0].startswith("request method=POST path=/v1/events query=dry_run=1 status=400")


async def test_with_fastapis_telemetry_on_every_request_goes_through_fastapi(
    clean_redis: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(api_config(PRINCIPALS, PARTITIONS, request_log=False), lambda: connect(clean_redis))
    monkeypatch.setattr(app._native_telemetry, "enabled", lambda: True)
    async with app.router.lifespan_context(app):
        assert app.hot_first is None
