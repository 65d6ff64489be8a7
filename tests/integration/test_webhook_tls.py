"""https webhooks connect to the address checked while TLS verifies the certificate for the URL's host (and sends
it as SNI): a certificate for that name is accepted, one for another name is refused as `connection_failed`."""

import ssl
import subprocess
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.support.webhook_receiver import Route, webhook_receiver
from tests.support.webhook_sender import SECRET, add_endpoint, add_notice, deliveries, running, sender, wait_until

TENANT = ("tenant_a", "env_a")
NAME = "hooks.tenant.test"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME}"],
                   check=True, capture_output=True)
    return cert, key


async def _to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]  # every name the test uses points at the local receiver


@pytest.mark.parametrize(("host", "outcome"), [(NAME, ("delivered", "")),
                                               ("other.tenant.test", ("dead", "connection_failed"))])
async def test_tls_is_verified_for_the_urls_host_while_connecting_to_the_checked_address(
    aredis: Redis, certificate: tuple[Path, Path], host: str, outcome: tuple[str, str],
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    with webhook_receiver({"/in": Route(SECRET, fail_first=0)}, tls=server_tls) as receiver:
        await add_endpoint(aredis, TENANT, "whe_tls", f"https://{host}:{receiver.port}/in")
        await add_notice(aredis, TENANT, "n1")
        async with running(sender(aredis, resolve=_to_loopback, tls=client_tls, max_attempts=1)):
            [delivery] = await wait_until(
                lambda: _settled(aredis), 10, "the delivery settled")
    assert (delivery.status, delivery.last_error) == outcome
    if outcome[0] == "delivered":
        [request] = receiver.received
        assert request.host == f"{NAME}:{receiver.port}" and request.signature_valid


async def _settled(redis: Redis) -> list[object]:
    found = await deliveries(redis, TENANT)
    return found if found and all(d.status != "pending" for d in found) else []
