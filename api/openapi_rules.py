"""Rules of the request bodies that their msgspec types do not carry, stated in the OpenAPI components.

Each is enforced in the code its comment names; here it is only documented, so that a client (or schemathesis) that
follows the document sends what tally accepts. Decimal fields decode as `str | int | float` and are checked by
api/translate.py against the grammar of domain/money.py; the document gives each its sign and bounds.
"""

from typing import Any, Literal

from api.events import MAX_BULK
from domain.bounds import (
    COOLDOWN_MAX_SECONDS,
    DECIMAL_FRACTION_DIGITS,
    DECIMAL_INTEGER_DIGITS,
    PRIORITY_MAX,
    WEBHOOK_SECRET_MAX_BYTES,
    WEBHOOK_SECRET_MIN_BYTES,
    WEBHOOK_URL_MAX_LENGTH,
)

Sign = Literal["any", "positive", "non_negative"]
LIMIT = 10**DECIMAL_INTEGER_DIGITS
_WHOLE = f"(0|[1-9][0-9]{{0,{DECIMAL_INTEGER_DIGITS - 1}}})"
_FRACTION = f"(\\.[0-9]{{1,{DECIMAL_FRACTION_DIGITS}}})?"
# A positive value below 1: `0.` then a fraction with a non-zero digit, at most DECIMAL_FRACTION_DIGITS long.
_SMALL = "|".join(f"0{{{zeros}}}[1-9][0-9]{{0,{DECIMAL_FRACTION_DIGITS - 1 - zeros}}}"
                  for zeros in range(DECIMAL_FRACTION_DIGITS))
# The plain form of the grammar (no exponent, no insignificant zeros), which every client can send; unanchored.
DECIMAL_PATTERNS: dict[Sign, str] = {
    "any": f"-?{_WHOLE}{_FRACTION}",
    "non_negative": f"{_WHOLE}{_FRACTION}",
    "positive": f"[1-9][0-9]{{0,{DECIMAL_INTEGER_DIGITS - 1}}}{_FRACTION}|0\\.({_SMALL})",
}
_NUMBER_BOUNDS: dict[Sign, dict[str, int]] = {
    "any": {"exclusiveMinimum": -LIMIT, "exclusiveMaximum": LIMIT},
    "non_negative": {"minimum": 0, "exclusiveMaximum": LIMIT},
    "positive": {"exclusiveMinimum": 0, "exclusiveMaximum": LIMIT},
}
# (component, field) → sign, as api/translate.py and domain/pricing.py check them. "" means "not given" where the
# field may be absent; REQUIRED_DECIMALS may not be empty.
DECIMAL_FIELDS: dict[str, dict[str, Sign]] = {
    "CreateWalletRequest": {"conversion_rate": "positive", "topup_conversion_rate": "positive",
                            "initial_credits_to_load": "non_negative"},
    "TopUpRequest": {"credits_to_add": "positive", "amount": "positive"},
    "DebitRequest": {"credits": "positive"},
    "PaymentRequest": {"amount": "positive"},
    "CreatePriceRequest": {"amount": "non_negative"},
    "TransformQuantity": {"divide_by": "positive"},
    "TierWire": {"unit_amount": "non_negative", "up_to": "positive", "flat_amount": "non_negative"},
    "AutoTopupWire": {"threshold": "any", "amount": "any"},
    "AlertThresholdWire": {"threshold": "any"},
}
REQUIRED_DECIMALS = {("DebitRequest", "credits"), ("TransformQuantity", "divide_by")}

# domain/webhook_targets.py parse_target: http(s), a host, no credentials, an optional port, printable ASCII.
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
URL_PATTERN = f"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&'()*+,;=-]+(:{_PORT})?([/?#][!-~]*)?$"
# domain/webhook_targets.py check_secret: whsec_ and the standard base64 of 24 to 64 bytes.
_B64 = "[A-Za-z0-9+/]"
_GROUPS_MIN, _GROUPS_MAX = WEBHOOK_SECRET_MIN_BYTES // 3, WEBHOOK_SECRET_MAX_BYTES // 3
SECRET_PATTERN = (f"^whsec_(({_B64}{{4}}){{{_GROUPS_MIN},{_GROUPS_MAX}}}({_B64}{{2}}==)?"
                  f"|({_B64}{{4}}){{{_GROUPS_MIN},{_GROUPS_MAX - 1}}}{_B64}{{3}}=)$")


def _one_of_given(*names: str) -> dict[str, Any]:
    return {"anyOf": [{"required": [name], "properties": {name: {"not": {"enum": [None, ""]}}}} for name in names]}


# Rules across fields, each merged into its component.
CROSS_FIELD_RULES: dict[str, dict[str, Any]] = {
    "CreateWalletRequest": _one_of_given("customer_id", "external_customer_id"),  # api/translate.py create_wallet
    "TopUpRequest": {  # domain/decide.py: one of credits_to_add and amount; api/translate.py int_field
        **_one_of_given("credits_to_add", "amount"),
        "properties": {"priority": {"minimum": 0, "maximum": PRIORITY_MAX}},
    },
    "BulkIngestRequest": {  # api/events.py accept_bulk: decoded one by one, so that a 400 names each invalid event
        "properties": {"events": {"minItems": 1, "maxItems": MAX_BULK,
                                  "items": {"$ref": "#/components/schemas/IngestEventRequest"}}},
    },
    "AggregationWire": {  # domain/pricing.py check_price
        "if": {"properties": {"type": {"const": "SUM"}}},
        "then": {"required": ["field"], "properties": {"field": {"type": "string", "minLength": 1}}},
    },
    "CreatePriceRequest": {  # domain/pricing.py check_price
        "if": {"properties": {"billing_model": {"const": "TIERED"}}},
        "then": {"required": ["tiers"], "properties": {"tiers": {"minItems": 1}}},
    },
    "EndpointRequest": {  # api/webhooks.py add_endpoint
        "properties": {"url": {"maxLength": WEBHOOK_URL_MAX_LENGTH, "pattern": URL_PATTERN},
                       "secret": {"anyOf": [{"type": "string", "pattern": SECRET_PATTERN}, {"type": "null"}]}},
    },
    "AutoTopupWire": {  # domain/decide.py: enabled needs a threshold and a positive amount; api/translate.py
        "properties": {"cooldown_seconds": {"minimum": 0, "maximum": COOLDOWN_MAX_SECONDS}},
        "if": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]},
        "then": {"required": ["threshold", "amount"],
                 "properties": {"threshold": {"type": "number"}, "amount": {"type": "number", "exclusiveMinimum": 0}}},
    },
}


def decimal_schema(existing: dict[str, Any], sign: Sign, may_be_empty: bool) -> dict[str, Any]:
    """The documented form of a decimal field, keeping the JSON types its msgspec type decodes."""
    options: list[dict[str, Any]] = existing.get("anyOf") or [existing]
    types = {option.get("type") for option in options}
    documented: list[dict[str, Any]] = []
    if "string" in types:
        optional = "?" if may_be_empty else ""
        documented.append({"type": "string", "pattern": f"^({DECIMAL_PATTERNS[sign]}){optional}$"})
    for kind in ("integer", "number"):
        if kind in types:
            documented.append({"type": kind, **_NUMBER_BOUNDS[sign]})
    if "null" in types:
        documented.append({"type": "null"})
    schema: dict[str, Any] = {"anyOf": documented} if len(documented) > 1 else documented[0]
    if "default" in existing:
        schema["default"] = existing["default"]
    return schema


def document_decimals(schemas: dict[str, Any]) -> None:
    for component, fields in DECIMAL_FIELDS.items():
        properties = schemas[component]["properties"]
        for name, sign in fields.items():
            properties[name] = decimal_schema(properties[name], sign, (component, name) not in REQUIRED_DECIMALS)
