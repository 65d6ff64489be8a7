"""Request bodies decoded by msgspec (errors become 400 validation_error) and documented in the OpenAPI."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from fastapi import Request

from domain.errors import ValidationFailed

T = TypeVar("T")
SCHEMA_TYPES: set[Any] = set()


def decode_body(decoder: "msgspec.json.Decoder[T]", data: bytes) -> T:
    """Decode a JSON body; what does not fit its type is a ValidationFailed (a 400)."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"invalid body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ValidationFailed("body is not valid JSON") from exc
    except RecursionError as exc:
        raise ValidationFailed("body is nested too deeply") from exc


def json_body(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    decoder = msgspec.json.Decoder(kind)

    async def parse(request: Request) -> T:
        return decode_body(decoder, await request.body())

    return parse


def schema_ref(kind: Any) -> dict[str, Any]:
    SCHEMA_TYPES.add(kind)
    return {"$ref": f"#/components/schemas/{kind.__name__}"}


def request_doc(kind: Any) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema_ref(kind)}}}}


def response_doc(status: int, kind: Any, description: str = "OK") -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": description, "content": {"application/json": {"schema": schema_ref(kind)}}},
        "4XX": {"description": "Error", "content": {"application/json": {"schema": {"$ref":
                "#/components/schemas/ErrorResponse"}}}},
    }


def schema_components() -> dict[str, Any]:
    from api.schemas import ErrorResponse

    _, components = msgspec.json.schema_components(
        sorted({*SCHEMA_TYPES, ErrorResponse}, key=lambda k: k.__name__),
        ref_template="#/components/schemas/{name}",
    )
    return components
