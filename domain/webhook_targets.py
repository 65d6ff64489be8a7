"""Which webhook destinations tally may call: the URL's shape, its secret, and which addresses are not public.

Pure: the caller resolves the host (at registration and again before every connection) and asks `refusal` about
each address it got; any non-public address refuses the whole destination unless private ones are allowed.
"""

import base64
import binascii
import ipaddress
import re
from urllib.parse import urlsplit

import msgspec

from domain.bounds import WEBHOOK_SECRET_MAX_BYTES, WEBHOOK_SECRET_MIN_BYTES, WEBHOOK_URL_MAX_LENGTH
from domain.errors import ValidationFailed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SECRET_PREFIX = "whsec_"
ERROR_CLASSES = frozenset({"", "timeout", "connection_failed", "refused_destination", "endpoint_deleted"})
_HTTP_CLASS = re.compile(r"http_[1-5][0-9][0-9]")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class Target(msgspec.Struct, frozen=True):
    scheme: str
    host: str
    port: int


def parse_target(url: str) -> Target:
    """http(s) only, a host, no credentials, no whitespace or control characters, at most the documented length."""
    if len(url) > WEBHOOK_URL_MAX_LENGTH:
        raise ValidationFailed(f"url is longer than {WEBHOOK_URL_MAX_LENGTH} characters")
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise ValidationFailed("url must be ASCII without spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValidationFailed("url must be http(s)")
    if "@" in parts.netloc:
        raise ValidationFailed("url must not carry credentials")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValidationFailed("url has an invalid port") from exc
    if not parts.hostname:
        raise ValidationFailed("url must name a host")
    return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: Address) -> str | None:
    """Why `address` is not a public destination (loopback, private, link-local, CGNAT, multicast, …); None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and (reason := refusal(inner)) is not None:
            return f"{reason} (embedded in IPv6)"
        if address.ipv4_mapped is not None:  # a socket to ::ffff:a.b.c.d reaches a.b.c.d: judged by it alone
            return None
        if address.is_site_local:
            return "site-local"
    for reason, hit in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                        ("unspecified", address.is_unspecified), ("multicast", address.is_multicast),
                        ("private", address.is_private), ("reserved", address.is_reserved)):
        if hit:
            return reason
    return None if address.is_global else "not global"


def refusal_of(text: str) -> str | None:
    """`refusal` of an address as the resolver returned it (an IPv6 scope such as `%eth0` is dropped)."""
    try:
        return refusal(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return "not an address"


def check_addresses(host: str, addresses: list[str]) -> None:
    """Raise ValidationFailed unless `host` resolved to at least one address and every one is public; the message
    is the same whatever the reason, so it tells nothing about internal names or addresses."""
    if not addresses:
        raise ValidationFailed("url must resolve to a public address", {"host": host})
    for address in addresses:
        if refusal_of(address) is not None:
            raise ValidationFailed("url must resolve to a public address", {"host": host})


def check_secret(secret: str) -> None:
    """`whsec_` + standard base64 of WEBHOOK_SECRET_MIN_BYTES to WEBHOOK_SECRET_MAX_BYTES bytes."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > len(SECRET_PREFIX) + 4 * -(-WEBHOOK_SECRET_MAX_BYTES // 3):
        raise ValidationFailed("secret must be whsec_ followed by base64")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("secret must be whsec_ followed by base64") from exc
    if not WEBHOOK_SECRET_MIN_BYTES <= len(key) <= WEBHOOK_SECRET_MAX_BYTES:
        raise ValidationFailed(f"secret must carry {WEBHOOK_SECRET_MIN_BYTES} to {WEBHOOK_SECRET_MAX_BYTES} bytes")


def error_class(last_error: str) -> str:
    """What a tenant may see of a delivery's last error: its class. Anything else (a detail stored by an older
    version, such as an exception text naming an internal port) reads as `connection_failed`."""
    if last_error in ERROR_CLASSES or _HTTP_CLASS.fullmatch(last_error):
        return last_error
    if last_error == "endpoint was deleted":
        return "endpoint_deleted"
    return "connection_failed"
