"""Registering a webhook endpoint: only public destinations (checked after DNS), unless private ones are allowed;
http(s) only, no credentials, bounded; secrets of at least 24 bytes, generated ones included."""

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from api.app import create_app
from domain.bounds import WEBHOOK_MAX_ENDPOINTS, WEBHOOK_SECRET_MIN_BYTES
from store.connect import connect
from tests.support.components import api_config
from tests.support.harness import API_KEY, PARTITIONS, PRINCIPALS

SECRET = "whsec_" + base64.b64encode(b"s" * WEBHOOK_SECRET_MIN_BYTES).decode()
PRIVATE_URLS = [
    "http://127.0.0.1:9000/in", "http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/",
    "http://0.0.0.0/", "http://10.0.0.5/", "http://172.16.3.4/", "http://192.168.0.10/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://224.0.0.1/",
    "http://[::1]/", "http://[::]/", "http://[fe80::1]/", "http://[fc00::7]/", "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/", "https://localhost/", "http://localhost:6379/",
]


@asynccontextmanager
async def api(redis_url: str, allow_private: bool) -> AsyncIterator[httpx.AsyncClient]:
    config = api_config(PRINCIPALS, PARTITIONS, request_log=False, webhook_allow_private=allow_private)
    app = create_app(config, lambda: connect(redis_url))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tally/v1", headers={"x-api-key": API_KEY},
    ) as client:
        yield client


async def register(client: httpx.AsyncClient, url: str, **extra: Any) -> httpx.Response:
    return await client.post("/webhooks/endpoints", json={"url": url, "secret": SECRET, **extra})


async def test_every_private_loopback_link_local_numeric_and_ipv6_form_is_refused_and_nothing_stored(
    clean_redis: str,
) -> None:
    async with api(clean_redis, allow_private=False) as client:
        for url in PRIVATE_URLS:
            response = await register(client, url)
            assert response.status_code == 400, (url, response.text)
            assert response.json()["code"] == "validation_error"
            assert response.json()["message"] == "url must resolve to a public address", url
        assert (await client.get("/webhooks/endpoints")).json()["items"] == []


async def test_a_public_literal_address_is_accepted(clean_redis: str) -> None:
    async with api(clean_redis, allow_private=False) as client:
        response = await register(client, "https://93.184.216.34/hooks")
        assert response.status_code == 201, response.text


async def test_a_host_that_does_not_resolve_is_refused_like_a_private_one(clean_redis: str) -> None:
    async with api(clean_redis, allow_private=False) as client:
        response = await register(client, "https://no-such-host.invalid/hooks")
        assert response.status_code == 400
        assert response.json()["message"] == "url must resolve to a public address"


async def test_allowing_private_destinations_accepts_them(clean_redis: str) -> None:
    async with api(clean_redis, allow_private=True) as client:
        for url in ("http://127.0.0.1:9000/in", "http://localhost:8080/", "http://[::1]:9/"):
            assert (await register(client, url)).status_code == 201, url


@pytest.mark.parametrize("url", [
    "ftp://93.184.216.34/", "file:///etc/passwd", "http://user:pw@93.184.216.34/", "http://u@93.184.216.34/",
    "http://93.184.216.34/" + "a" * 2048, "http://93.184.216.34/\r\nx-injected: 1", "http://93.184.216.34:0x50/",
])
async def test_other_schemes_credentials_long_or_malformed_urls_are_refused(clean_redis: str, url: str) -> None:
    async with api(clean_redis, allow_private=True) as client:
        response = await register(client, url)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_" + base64.b64encode(b"x" * 23).decode(), "whsec_%%",
                                    base64.b64encode(b"x" * 32).decode()])
async def test_a_short_empty_or_malformed_secret_is_refused(clean_redis: str, secret: str) -> None:
    async with api(clean_redis, allow_private=True) as client:
        response = await client.post("/webhooks/endpoints", json={"url": "http://127.0.0.1:1/", "secret": secret})
        assert response.status_code == 400, response.text


async def test_a_generated_secret_carries_at_least_24_random_bytes_and_differs_each_time(clean_redis: str) -> None:
    async with api(clean_redis, allow_private=True) as client:
        secrets = []
        for _ in range(2):
            created = await client.post("/webhooks/endpoints", json={"url": "http://127.0.0.1:1/"})
            assert created.status_code == 201, created.text
            secrets.append(created.json()["secret"])
        for secret in secrets:
            assert secret.startswith("whsec_")
            assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= WEBHOOK_SECRET_MIN_BYTES
        assert secrets[0] != secrets[1]


async def test_endpoints_and_event_type_filters_are_bounded(clean_redis: str) -> None:
    async with api(clean_redis, allow_private=True) as client:
        too_many_types = await register(client, "http://127.0.0.1:1/", event_types=[f"t{i}" for i in range(33)])
        assert too_many_types.status_code == 400
        for _ in range(WEBHOOK_MAX_ENDPOINTS):
            assert (await register(client, "http://127.0.0.1:1/")).status_code == 201
        assert (await register(client, "http://127.0.0.1:1/")).status_code == 400
