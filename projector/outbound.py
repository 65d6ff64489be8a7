"""Outbound HTTP for webhooks: resolve the host, refuse non-public addresses, connect to the address checked.

The check runs inside the connection itself (a network backend under httpx), so DNS answering differently between
the check and the connect (rebinding) cannot slip a private address in: the socket goes to an address that passed.
TLS still verifies the certificate and sends SNI for the URL's host, and the Host header is the URL's: only the
TCP connect uses the resolved address. Proxies from the environment are ignored (they would bypass the check).
"""

import asyncio
import functools
import socket
import ssl
import typing
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import httpcore
import httpx

from domain.errors import ValidationFailed
from domain.webhook_targets import check_addresses, refusal_of

Resolver = Callable[[str, int], Awaitable[list[str]]]


# getaddrinfo blocks a thread for as long as a (tenant's) name server takes, beyond any deadline of ours: webhook
# names get threads of their own, so a hanging one never holds the loop's default executor (which Redis reconnects
# use) and a tenant's slow DNS takes threads only from this pool, which is larger than any tenant's share of attempts.
_RESOLVER_THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="webhook-dns")


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses getaddrinfo gives for `host` (numeric forms such as 2130706433 included), in its order."""
    infos = await asyncio.get_running_loop().run_in_executor(
        _RESOLVER_THREADS, functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM))
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def public_addresses(host: str, port: int, resolve: Resolver, timeout_s: float | None = None,
                           explain: bool = False) -> list[str]:
    """Resolve `host`; raise ValidationFailed when it does not resolve (in time) or any address is not public.
    With `explain` (operators' logs only, never a tenant's answer) the error names each address and its reason."""
    try:
        async with asyncio.timeout(timeout_s):
            addresses = await resolve(host, port)
    except (OSError, TimeoutError) as exc:
        raise ValidationFailed("url must resolve to a public address",
                               {"host": host, **({"resolver": repr(exc)} if explain else {})}) from exc
    try:
        check_addresses(host, addresses)
    except ValidationFailed as exc:
        if explain:
            exc.details["addresses"] = {a: refusal_of(a) or "public" for a in addresses}
        raise
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the destination check between resolving and connecting."""

    def __init__(self, resolve: Resolver, allow_private: bool) -> None:
        self.resolve = resolve
        self.allow_private = allow_private
        self.inner = httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[str]:
        if not self.allow_private:
            return await public_addresses(host, port, self.resolve, explain=True)
        try:
            return await self.resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in await self.addresses(host, port):
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose every connection goes through GuardedBackend."""

    def __init__(self, resolve: Resolver, allow_private: bool, max_connections: int,
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls or httpx.create_ssl_context(trust_env=False), max_connections=max_connections,
            max_keepalive_connections=max_connections, keepalive_expiry=5.0,
            network_backend=GuardedBackend(resolve, allow_private),
        )


def webhook_client(allow_private: bool, max_connections: int, resolve: Resolver = system_resolve,
                   tls: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The sender's client: guarded connections, no redirects followed, no proxy or netrc from the environment;
    `tls` replaces the system's trust store (tests trust their own certificate with it)."""
    return httpx.AsyncClient(transport=GuardedTransport(resolve, allow_private, max_connections, tls),
                             follow_redirects=False, trust_env=False)
