"""JSON responses: a msgspec value encoded once, with its status, as every route answers."""

import msgspec
from fastapi.responses import Response

from api.schemas import WalletResponse

_encoder = msgspec.json.Encoder()


def json(value: msgspec.Struct | list[WalletResponse], status: int = 200) -> Response:
    return json_body(encode(value), status)


def encode(value: msgspec.Struct | list[WalletResponse]) -> bytes:
    return _encoder.encode(value)


def json_body(body: bytes, status: int = 200) -> Response:
    """A response whose body is already encoded JSON (as `json` encodes it)."""
    return Response(body, status_code=status, media_type="application/json")
