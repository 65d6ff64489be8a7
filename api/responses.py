"""JSON responses: a msgspec value encoded once, with its status, as every route answers."""

import msgspec
from fastapi.responses import Response

from api.schemas import WalletResponse

_encoder = msgspec.json.Encoder()


def json(value: msgspec.Struct | list[WalletResponse], status: int = 200) -> Response:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")
