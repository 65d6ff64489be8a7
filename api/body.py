"""Request bodies decoded by msgspec (errors become 400 validation_error) and documented in the OpenAPI."""

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, get_args, get_origin

import msgspec
from fastapi import Request

from domain.errors import ValidationFailed

T = TypeVar("T")
MAX_INTEGRAL_FIXES = 16
_INT_GOT_FLOAT = re.compile(r"Expected `int[^`]*`, got `float` - at `\$((?:\.\w+|\[\d+\])+)`")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")
SCHEMA_TYPES: set[Any] = set()
ERROR_REF = "#/components/schemas/ErrorResponse"
# What each error status means in the document; api/openapi.py adds the ones every route of a kind can answer.
ERROR_MEANINGS = {
    400: "Bad Request: a parameter or the body is malformed or out of bounds, or the operation is not allowed "
         "in the resource's state (validation_error, invalid_operation); nothing was changed",
    401: "Unauthorized: no x-api-key header, or an unknown key (permission_denied)",
    403: "Forbidden: the key may not do this (permission_denied)",
    404: "Not Found: no such resource for this tenant and environment, or no such route (not_found)",
    408: "Request Timeout: the request's headers or body did not arrive in time (request_timeout)",
    409: "Conflict: an idempotency key reused with another body, an id that exists, or an account that kept "
         "changing (already_exists, version_conflict)",
    413: "Content Too Large: the body is over the route's limit (request_too_large)",
    431: "Request Header Fields Too Large: the request line and headers are over their limit "
         "(request_header_too_large)",
    500: "Internal Server Error (internal_error)",
    503: "Service Unavailable: the event store did not answer; retry with the same idempotency key or event id "
         "(service_unavailable)",
}


def decode_body(decoder: "msgspec.json.Decoder[T]", data: bytes) -> T:
    """Decode a JSON body; what does not fit its type is a ValidationFailed (a 400)."""
    try:
        return decode_json_numbers(decoder, data)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"invalid body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ValidationFailed("body is not valid JSON") from exc
    except RecursionError as exc:
        raise ValidationFailed("body is nested too deeply") from exc


def decode_json_numbers(decoder: "msgspec.json.Decoder[T]", data: bytes) -> T:
    """`decoder.decode`, except that an integer field also takes a number with a zero fraction (`18.0`), as JSON
    Schema's `integer` does: each such value is rewritten to its integer and the body decoded again."""
    for _ in range(MAX_INTEGRAL_FIXES):
        try:
            return decoder.decode(data)
        except msgspec.ValidationError as exc:
            fixed = _integral_float_fixed(data, str(exc))
            if fixed is None:
                raise
            data = fixed
    return decoder.decode(data)


def _integral_float_fixed(data: bytes, error: str) -> bytes | None:
    """The body with the integral float that `error` names turned into an integer; None when it is not that."""
    found = _INT_GOT_FLOAT.search(error)
    if found is None:
        return None
    document = msgspec.json.decode(data)
    steps: list[Any] = [int(i) if i else name for name, i in _STEP.findall(found.group(1))]
    node = document
    for step in steps[:-1]:
        node = node[step]
    value = node[steps[-1]]
    if not isinstance(value, float) or not value.is_integer():
        return None
    node[steps[-1]] = int(value)
    return msgspec.json.encode(document)


def json_body(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    decoder = msgspec.json.Decoder(kind)

    async def parse(request: Request) -> T:
        return decode_body(decoder, await request.body())

    return parse


def schema_ref(kind: Any) -> dict[str, Any]:
    """A $ref to the msgspec schema of `kind`; `list[X]` is an array of X."""
    if get_origin(kind) is list:
        return {"type": "array", "items": schema_ref(get_args(kind)[0])}
    SCHEMA_TYPES.add(kind)
    return {"$ref": f"#/components/schemas/{kind.__name__}"}


def request_doc(kind: Any) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema_ref(kind)}}}}


def error_doc(status: int) -> dict[str, Any]:
    return {"description": ERROR_MEANINGS[status], "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}}


def response_doc(
    status: int, kind: Any, description: str = "OK", errors: Iterable[int] = ()
) -> dict[int | str, dict[str, Any]]:
    """The success response (`kind` None: no body) and the route's own error statuses (see api/openapi.py)."""
    success: dict[str, Any] = {"description": description}
    if kind is not None:
        success["content"] = {"application/json": {"schema": schema_ref(kind)}}
    return {status: success, **{code: error_doc(code) for code in errors}}


def schema_components() -> dict[str, Any]:
    from api.schemas import ErrorResponse

    _, components = msgspec.json.schema_components(
        sorted({*SCHEMA_TYPES, ErrorResponse}, key=lambda k: k.__name__),
        ref_template="#/components/schemas/{name}",
    )
    return components
