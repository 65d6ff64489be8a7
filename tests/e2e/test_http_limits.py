"""Transport bounds on a real `tally api` process: body size (413) on the fast path and through FastAPI, header size
(431), body and header deadlines (408), idle keep-alive, the concurrency limit (503), loopback binds."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.stores import free_port
from store.connect import connect_sync
from store.keys import Keys
from tests.support import rawhttp
from tests.support.dev_server import KEY, PARTITIONS, ROOT, DevServer, api_server
from tests.support.redis_cluster import flush_store

BODY_LIMIT, BULK_LIMIT, HEADER_LIMIT = 64 << 10, 256 << 10, 8 << 10
TIMEOUT = 1.0  # body and header deadlines, and keep-alive, in this module's server
SLACK = 3.0  # how much later than its deadline a slow, shared machine may close a connection
LIMITS = {"body_limit_bytes": str(BODY_LIMIT), "bulk_body_limit_bytes": str(BULK_LIMIT),
          "header_limit_bytes": str(HEADER_LIMIT), "body_timeout_seconds": str(TIMEOUT),
          "header_timeout_seconds": str(TIMEOUT), "keep_alive_seconds": "1", "operator_keys": "op-key"}
AUTH = {"x-api-key": KEY, "content-type": "application/json"}


@pytest.fixture(scope="module")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    flush_store(redis_url)
    with api_server(redis_url, tmp_path_factory.mktemp("tally-api"), **LIMITS) as server:
        yield server


def appended(redis_url: str) -> int:
    """Entries ever appended to the feeds (entries-added: retention may trim them meanwhile)."""
    client = connect_sync(redis_url)
    total = 0
    for partition in range(PARTITIONS):
        if client.exists(Keys(PARTITIONS).feed(partition)):
            info: Any = client.xinfo_stream(Keys(PARTITIONS).feed(partition))
            total += int(info["entries-added"])
    return total


def event(n: int) -> dict[str, object]:
    return {"event_name": "api_call", "external_customer_id": "cust_limits", "event_id": f"ev_{n}",
            "properties": {"n": n}}


def padded(document: object, size: int) -> bytes:
    """A valid JSON document padded with trailing whitespace to `size` bytes: only its size is wrong."""
    data = json.dumps(document).encode()
    return data + b" " * (size - len(data))


def test_a_body_over_the_limit_is_413_on_every_path_declared_or_chunked_and_nothing_is_appended(api: DevServer) -> None:
    before = appended(api.redis_url)
    cases = [("/v1/events", padded(event(1), BODY_LIMIT + 1)),
             ("/v1/events/bulk", padded({"events": [event(2)]}, BULK_LIMIT + 1)),
             ("/v1/wallets", padded({"customer_id": "cust_limits", "currency": "USD"}, BODY_LIMIT + 1))]
    with httpx.Client(base_url=api.url, headers=AUTH, timeout=10) as client:
        for path, data in cases:
            for content in (data, iter([data[: len(data) // 2], data[len(data) // 2:]])):  # length, then chunked
                response = client.post(path, content=content)
                assert response.status_code == 413, (path, response.text)
                assert response.json()["code"] == "request_too_large"
                assert response.json()["http_status_code"] == 413
        assert appended(api.redis_url) == before
        assert client.get("/v1/customers/cust_limits/wallets").json() == []
        assert client.post("/v1/events", content=padded(event(3), BODY_LIMIT)).status_code == 202


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_100_mb_body_is_never_buffered(api: DevServer) -> None:
    """The issue measured 69 → 274 MB RSS for one 100 MB body; refused at the limit, it costs nothing."""
    before = rss_kib(api.pid)
    block = b" " * (1 << 16)
    for framing in ({"content-length": str(100 << 20)}, {"transfer-encoding": "chunked"}):
        with rawhttp.connect(api.url) as sock:
            sock.sendall(rawhttp.head("POST", "/v1/events/bulk", {"x-api-key": KEY, **framing}))
            piece = block if "content-length" in framing else b"10000\r\n" + block + b"\r\n"
            assert rawhttp.dribble(sock, [piece] * 1600, 0, time.monotonic() + 30)  # 100 MB, or until refused
            assert rawhttp.status(rawhttp.read_until_closed(sock, SLACK)) == 413
    assert rss_kib(api.pid) - before < 16 << 10, f"RSS grew from {before} KiB to {rss_kib(api.pid)} KiB"


def test_a_bulk_may_be_larger_than_other_bodies_up_to_its_own_limit(api: DevServer) -> None:
    events = [event(1000 + n) for n in range(BODY_LIMIT // 80)]
    data = json.dumps({"events": events}).encode()
    assert BODY_LIMIT < len(data) < BULK_LIMIT
    response = httpx.post(f"{api.url}/v1/events/bulk", content=data, headers=AUTH, timeout=10)
    assert response.status_code == 202, response.text


def test_a_head_over_the_header_limit_is_refused_whether_it_ends_or_not(api: DevServer) -> None:
    assert httpx.get(f"{api.url}/healthz", headers={"x-pad": "a" * (HEADER_LIMIT // 2)}).status_code == 200
    with rawhttp.connect(api.url) as sock:
        sock.sendall(rawhttp.head("GET", "/healthz", {"x-pad": "a" * HEADER_LIMIT}))
        response = rawhttp.read_until_closed(sock, SLACK)
    assert rawhttp.status(response) == 431
    assert rawhttp.body(response)["code"] == "request_header_too_large"
    with rawhttp.connect(api.url) as sock:  # a header that never ends: refused once the limit is passed
        hung_up = rawhttp.dribble(sock, [b"GET /healthz HTTP/1.1\r\nx-pad: "] + [b"a" * 4096] * 64, 0.01,
                                  time.monotonic() + SLACK)
        assert hung_up
        assert rawhttp.status(rawhttp.read_until_closed(sock, SLACK)) == 431


@pytest.mark.parametrize("path", ["/v1/events", "/v1/wallets"])
def test_a_dribbled_body_is_answered_408_and_dropped_within_its_deadline(api: DevServer, path: str) -> None:
    started = time.monotonic()
    with rawhttp.connect(api.url) as sock:
        sock.sendall(rawhttp.head("POST", path, {"x-api-key": KEY, "content-length": "1000"}))
        assert rawhttp.dribble(sock, [b" "] * 1000, 0.1, started + TIMEOUT + SLACK)
        response = rawhttp.read_until_closed(sock, SLACK)
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert rawhttp.status(response) == 408
    assert rawhttp.body(response)["code"] == "request_timeout"


def test_dribbled_headers_and_a_silent_connection_are_dropped_within_the_header_deadline(api: DevServer) -> None:
    started = time.monotonic()
    with rawhttp.connect(api.url) as sock:
        request = rawhttp.head("GET", "/healthz", {"x-api-key": KEY})
        assert rawhttp.dribble(sock, [bytes([b]) for b in request], 0.1, started + TIMEOUT + SLACK)
        assert rawhttp.status(rawhttp.read_until_closed(sock, SLACK)) == 408
    with rawhttp.connect(api.url) as sock:
        assert rawhttp.read_until_closed(sock, TIMEOUT + SLACK) == b""
    assert time.monotonic() - started < 2 * (TIMEOUT + SLACK)


def test_an_idle_keep_alive_connection_is_closed_and_blank_lines_do_not_keep_it(api: DevServer) -> None:
    for keep_busy in (False, True):
        with rawhttp.connect(api.url) as sock:
            sock.sendall(rawhttp.head("GET", "/healthz", {}))
            started = time.monotonic()
            if keep_busy:
                rawhttp.dribble(sock, [b"\r\n"] * 100, 0.2, started + TIMEOUT * 2 + SLACK)
            response = rawhttp.read_until_closed(sock, TIMEOUT * 2 + SLACK)
        assert rawhttp.status(response) == 200
        assert time.monotonic() - started < TIMEOUT * 2 + SLACK


def test_over_the_concurrency_limit_requests_are_503_with_the_error_shape(
    redis_url: str, tmp_path: Path
) -> None:
    with api_server(redis_url, tmp_path, max_concurrency="2") as server:
        held = [rawhttp.connect(server.url) for _ in range(2)]
        try:
            response = httpx.get(f"{server.url}/healthz", headers={"connection": "close"})
            assert response.status_code == 503
            assert response.json()["code"] == "service_unavailable"
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + SLACK
        while httpx.get(f"{server.url}/healthz").status_code != 200:
            assert time.monotonic() < deadline, "still refused after the held connections closed"
            time.sleep(rawhttp.POLL)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp) with a listening socket on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_tally_api_binds_loopback_by_default(api: DevServer) -> None:
    port = int(api.url.rsplit(":", 1)[1])
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only


def test_a_request_log_line_stays_one_line_whatever_the_path_or_query(api: DevServer) -> None:
    forged = "/v1/wallets/w%0A2026-01-01 INFO tally.api request forged=yes%0D%00/balance/real-time"
    with rawhttp.connect(api.url) as sock:
        sock.sendall(rawhttp.head("GET", forged.replace(" ", "%20") + "?expand=%0Aforged", {"connection": "close"}))
        rawhttp.read_until_closed(sock, SLACK)
    deadline = time.monotonic() + SLACK
    while "forged" not in api.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the request was never logged"
        time.sleep(rawhttp.POLL)
    lines = [line for line in api.log.read_text(errors="replace").splitlines() if "forged" in line]
    assert len(lines) == 1 and lines[0].split(" ", 3)[2] == "INFO", lines
    assert "path=/v1/wallets/w%0A2026-01-01%20INFO" in lines[0] and "query=expand=%0Aforged" in lines[0]


def test_a_projector_metrics_port_binds_loopback_by_default(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "TALLY_REDIS_URL": redis_url, "TALLY_PARTITIONS": str(PARTITIONS)}
    command = [sys.executable, "-c", "from cli.main import run; run()", "projector", "--metrics-port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _listening_addresses(port):
            assert process.poll() is None and time.monotonic() < deadline, "the metrics port never listened"
            time.sleep(rawhttp.POLL)
        assert _listening_addresses(port) == {"0100007F"}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_tally_api_refuses_to_start_without_api_keys(redis_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "TALLY_REDIS_URL": redis_url, "TALLY_API_KEYS": ""}
    done = subprocess.run([sys.executable, "-c", "from cli.main import run; run()", "api"], env=env,
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2
    assert "no API keys" in done.stderr
