"""One webhook attempt on the wire: signed, under one total deadline, and its outcome reduced to a class.

Signatures follow the Standard Webhooks convention: `webhook-id` (stable per notice and endpoint),
`webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the key
being the base64 part of the endpoint's `whsec_…` secret.

The deadline covers everything (resolving, connecting, sending, the whole reply), so a receiver that dribbles its
reply is cut when it passes. Tenants see only the class (`timeout`, `connection_failed`, `http_<status>`,
`refused_destination`), which says nothing about whether some internal port is open; the detail goes to the log.
"""

import asyncio
import base64
import hashlib
import hmac
import time

import httpx
import msgspec

from domain.errors import ValidationFailed
from domain.webhook_targets import parse_target

REPLY_MAX_BYTES = 64 * 1024  # read and dropped: a receiver's reply body is never kept


class Outcome(msgspec.Struct, frozen=True):
    status: int  # HTTP status, 0 when no reply came
    error: str  # "" when delivered, else the class tenants see
    detail: str = ""  # for operators only (the log)

    @property
    def ok(self) -> bool:
        return self.error == ""

    @property
    def metric(self) -> str:
        """The class with HTTP statuses grouped by hundreds (a bounded label set)."""
        if self.ok:
            return "ok"
        return f"http_{self.status // 100}xx" if self.error.startswith("http_") else self.error


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


async def post(client: httpx.AsyncClient, url: str, secret: str, message_id: str, body: bytes,
               deadline_s: float) -> Outcome:
    """POST `body` to `url`, signed, and read at most REPLY_MAX_BYTES of the reply, all within `deadline_s`."""
    timestamp = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": message_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, message_id, timestamp, body)}
    try:
        parse_target(url)
        async with asyncio.timeout(deadline_s):
            async with client.stream("POST", url, content=body, headers=headers, timeout=deadline_s) as reply:
                await _drain(reply)
    except (TimeoutError, httpx.TimeoutException) as exc:
        return Outcome(0, "timeout", f"no whole reply within {deadline_s:.3f}s ({type(exc).__name__})")
    except ValidationFailed as exc:  # a URL or an address the policy refuses (checked again at every connect)
        return Outcome(0, "refused_destination", f"{exc.message}: {exc.details}")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Outcome(0, "connection_failed", f"{type(exc).__name__}: {exc}")
    if 200 <= reply.status_code < 300:
        return Outcome(reply.status_code, "")
    return Outcome(reply.status_code, f"http_{reply.status_code}")


async def _drain(reply: httpx.Response) -> None:
    read = 0
    async for chunk in reply.aiter_raw():
        read += len(chunk)
        if read >= REPLY_MAX_BYTES:
            return
