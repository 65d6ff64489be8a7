"""HTTP/1.1 over a raw socket, for what an HTTP client library will not do: dribble bytes, hold a connection idle,
send oversized heads; and read until the server closes, within a deadline (polling, never one long sleep)."""

import json
import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

POLL = 0.05


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5)
    sock.settimeout(POLL)
    return sock


def dribble(sock: socket.socket, pieces: Iterable[bytes], pause: float, deadline: float) -> bool:
    """Send each piece `pause` seconds apart until the server closes or `deadline`; True if the server hung up."""
    for piece in pieces:
        if time.monotonic() > deadline:
            return False
        try:
            sock.sendall(piece)
        except OSError:
            return True
        if closed_by_peer(sock, pause):
            return True
    return False


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Peek for EOF for up to `within` seconds without consuming a response."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
        time.sleep(POLL)
    return False


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it is still open after `timeout`."""
    end = time.monotonic() + timeout
    data = b""
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the server kept the connection open for {timeout}s; got {data[:200]!r}")


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body(response: bytes) -> Any:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: tally", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
