"""Webhook destinations: the URL's shape, the secret's strength, and every non-public address class refused."""

import base64
import ipaddress

import pytest

from domain.bounds import WEBHOOK_URL_MAX_LENGTH
from domain.errors import ValidationFailed
from domain.webhook_targets import Target, check_addresses, check_secret, error_class, parse_target, refusal


@pytest.mark.parametrize(("url", "target"), [
    ("https://hooks.example.com/in", Target("https", "hooks.example.com", 443)),
    ("http://hooks.example.com:8080/in?x=1", Target("http", "hooks.example.com", 8080)),
    ("HTTPS://Hooks.Example.com", Target("https", "hooks.example.com", 443)),
    ("http://[2606:4700::1]/x", Target("http", "2606:4700::1", 80)),
])
def test_a_well_formed_url_gives_its_scheme_host_and_port(url: str, target: Target) -> None:
    assert parse_target(url) == target


@pytest.mark.parametrize("url", [
    "ftp://hooks.example.com/", "file:///etc/passwd", "gopher://x/", "hooks.example.com/in", "//hooks.example.com",
    "http://user:pass@hooks.example.com/", "http://user@hooks.example.com/", "http://:@hooks.example.com/",
    "http:///nohost", "http://hooks.example.com:99999/", "http://hooks.example.com:x/",
    "http://hooks.example.com/a b", "http://hooks.example.com/\n", "http://hooks.exämple.com/",
    "https://hooks.example.com/" + "a" * WEBHOOK_URL_MAX_LENGTH,
])
def test_a_url_of_another_scheme_with_credentials_or_malformed_is_refused(url: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_target(url)


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "private"), ("255.255.255.255", "private"),
    ("100.64.0.1", "not global"), ("100.127.255.254", "not global"),  # CGNAT
    ("192.0.2.1", "private"), ("198.18.0.1", "private"),  # documentation and benchmarking ranges
    ("fec0::1", "site-local"),
    ("::ffff:127.0.0.1", "loopback (embedded in IPv6)"), ("::ffff:169.254.169.254", "link-local (embedded in IPv6)"),
    ("::ffff:10.0.0.1", "private (embedded in IPv6)"),
    ("2002:7f00:1::", "loopback (embedded in IPv6)"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local (embedded in IPv6)"),  # NAT64 of 169.254.169.254
])
def test_every_non_public_address_class_is_refused_with_its_reason(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_a_public_address_is_accepted(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_one_private_address_among_public_ones_refuses_the_host_and_so_does_no_address() -> None:
    check_addresses("hooks.example.com", ["8.8.8.8", "2606:4700::1111"])
    for addresses in (["8.8.8.8", "10.0.0.1"], [], ["not-an-address"], ["fe80::1%eth0"]):
        with pytest.raises(ValidationFailed) as refused:
            check_addresses("hooks.example.com", addresses)
        assert refused.value.message == "url must resolve to a public address"  # the same for every reason


def _secret(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(size))).decode()


@pytest.mark.parametrize("secret", [_secret(24), _secret(32), _secret(64)])
def test_a_secret_of_24_to_64_bytes_is_accepted(secret: str) -> None:
    check_secret(secret)


@pytest.mark.parametrize("secret", ["", "whsec_", _secret(0), _secret(16), _secret(23), _secret(65),
                                    "whsec_!!!!", "whsec_" + "A" * 10_000, base64.b64encode(bytes(32)).decode()])
def test_a_short_empty_unprefixed_oversized_or_malformed_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValidationFailed):
        check_secret(secret)


@pytest.mark.parametrize(("stored", "shown"), [
    ("", ""), ("timeout", "timeout"), ("http_503", "http_503"), ("refused_destination", "refused_destination"),
    ("ConnectError: [Errno 111] Connection refused", "connection_failed"),
    ("RemoteProtocolError: Server disconnected without sending a response.", "connection_failed"),
    ("endpoint was deleted", "endpoint_deleted"), ("http_5000", "connection_failed"),
])
def test_a_tenant_sees_only_the_class_of_an_error_even_one_stored_by_an_older_version(stored: str, shown: str) -> None:
    assert error_class(stored) == shown
