"""A lean HTTP/1.1 keep-alive client on one asyncio connection, for tests that send thousands of requests.

httpx spends ~3 ms of client CPU a request on a 2-core machine, more than the server; this client spends a few
tens of microseconds, so a 10,000-request test measures tally, not its client. It speaks only what uvicorn
answers tally's routes with: a status line, headers and a Content-Length body (no chunked bodies, no redirects).
"""

import asyncio
from types import TracebackType


class LoopbackError(RuntimeError):
    """The server answered something this client does not parse (or closed the connection mid-answer)."""


class LoopbackClient:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host = host
        self.port = port
        self.header_block = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "LoopbackClient":
        await self._connect()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self._close()

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
            self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST a JSON body; returns (status, response body). Reconnects first if the server closed the idle
        connection (the request is then sent once, on the new connection)."""
        if self.reader is None or self.reader.at_eof():
            await self._close()
            await self._connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n".encode() + self.header_block + b"\r\n" + body
        )
        await self.writer.drain()
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise LoopbackError(f"connection closed before the answer to POST {path}") from exc
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" not in headers:
            raise LoopbackError(f"POST {path} answered without Content-Length: {headers}")
        data = await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self._close()
        return status, data
