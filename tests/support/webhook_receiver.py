"""A real webhook receiver for tests: a threaded http.server on 127.0.0.1 that verifies Standard Webhooks signatures.

Each path is one endpoint with its own secret and behaviour: fail the first N attempts of every message with a 500
(N = None: fail forever), then answer 200; or, with `dribble_s`, answer 200 and trickle the reply body one byte every
DRIBBLE_INTERVAL_S for that long (a slow receiver holding the connection). Every request is recorded with its
headers, body and verdict when it arrives.
"""

import base64
import hashlib
import hmac
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60
DRIBBLE_INTERVAL_S = 0.1


def verify_signature(secret: str, message_id: str, timestamp: str, body: bytes, header: str,
                     now: float | None = None) -> bool:
    """Standard Webhooks: some `v1,<base64>` in the header equals HMAC-SHA256(key, "id.timestamp.body"), where key
    is the base64-decoded part of `whsec_…`, and the timestamp is within the tolerance of now."""
    try:
        sent_at = int(timestamp)
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > TOLERANCE_SECONDS:
        return False
    expected = base64.b64encode(hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    signatures = [part.partition(",") for part in header.split()]
    return any(version == "v1" and hmac.compare_digest(value.encode(), expected) for version, _, value in signatures)


@dataclass(frozen=True)
class Received:
    path: str
    message_id: str
    timestamp: str
    signature: str
    body: bytes
    signature_valid: bool
    status: int
    at: float  # time.monotonic() when it arrived
    host: str = ""  # the Host header


@dataclass
class Route:
    secret: str
    fail_first: int | None  # None: every attempt fails
    dribble_s: float = 0.0  # > 0: a 200 whose body trickles for this long


@dataclass
class Dribble:
    """One dribbled reply: when the request arrived and when the sender hung up (None: still connected). The hang-up
    is noticed by a failed write; `ended` is the write before the last that went through, never after it."""

    path: str
    started: float
    ended: float | None = None

    def in_flight_at(self, moment: float) -> bool:
        return self.started <= moment and (self.ended is None or self.ended > moment)


@dataclass
class Receiver:
    routes: dict[str, Route]
    received: list[Received] = field(default_factory=list)
    dribbles: list[Dribble] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def dribbling(self, path: str, moment: float) -> list[Dribble]:
        """The replies to `path` being dribbled at `moment` (time.monotonic())."""
        with self.lock:
            return [d for d in self.dribbles if d.path == path and d.in_flight_at(moment)]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        route = self.routes.get(path)
        message_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        signature = headers.get("webhook-signature", "")
        with self.lock:
            earlier = sum(1 for r in self.received if r.path == path and r.message_id == message_id)
            valid = route is not None and verify_signature(route.secret, message_id, timestamp, body, signature)
            if route is None or not valid:
                status = 401 if route is not None else 404
            else:
                status = 500 if route.fail_first is None or earlier < route.fail_first else 200
            self.received.append(Received(path, message_id, timestamp, signature, body, valid, status,
                                          time.monotonic(), headers.get("host", "")))
        return status

    def attempts(self, path: str) -> dict[str, list[Received]]:
        """The requests to `path`, grouped by webhook-id, in arrival order."""
        with self.lock:
            grouped: dict[str, list[Received]] = {}
            for r in self.received:
                if r.path == path:
                    grouped.setdefault(r.message_id, []).append(r)
            return grouped


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrived = time.monotonic()
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver.handle(self.path, headers, body)
            route = receiver.routes.get(self.path)
            dribble = int(route.dribble_s / DRIBBLE_INTERVAL_S) if route is not None and status == 200 else 0
            self.send_response(status)
            self.send_header("content-length", str(dribble))
            self.end_headers()
            if dribble:
                record = Dribble(self.path, arrived)
                with receiver.lock:
                    receiver.dribbles.append(record)
                ended = self.dribble(dribble)
                with receiver.lock:
                    record.ended = ended

        def dribble(self, count: int) -> float:
            """Write `count` bytes one at a time, DRIBBLE_INTERVAL_S apart, until done or the sender hangs up; when
            it ended: the time of the write before the last one that went through (a write into a connection the
            peer closed can still succeed once, so that one may be after the hang-up; the one before is not)."""
            written = [time.monotonic()] * 2
            try:
                for _ in range(count):
                    self.wfile.write(b".")
                    self.wfile.flush()
                    written = [written[1], time.monotonic()]
                    time.sleep(DRIBBLE_INTERVAL_S)
            except OSError:
                return written[0]
            return time.monotonic()

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def webhook_receiver(routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """Serve `routes` on a free port in a background thread (over TLS with `tls`); shut down and joined on exit."""
    receiver = Receiver(routes)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
