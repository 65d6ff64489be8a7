"""Rules of the request bodies that their msgspec types do not carry, stated in the OpenAPI components.

Each is enforced in the code its comment names; here it is only documented, so that a client (or schemathesis) that
follows the document sends what tally accepts. Decimal fields decode as `str | int | float` and are checked by
api/translate.py against the grammar of domain/money.py; the document gives each its sign and bounds.
"""

from typing import Any, Literal

from api.events import MAX_BULK
from api.schemas import COOLDOWN_UNITS
from domain.bounds import (
    COOLDOWN_MAX_SECONDS,
    DECIMAL_FRACTION_DIGITS,
    DECIMAL_INTEGER_DIGITS,
    EARLIEST,
    LATEST,
    PRIORITY_MAX,
    WEBHOOK_SECRET_MAX_BYTES,
    WEBHOOK_SECRET_MIN_BYTES,
    WEBHOOK_URL_MAX_LENGTH,
)
from domain.customers import CUSTOMER_ID_PREFIX, ULID_LENGTH

CUSTOMER_ID_PATTERN = f"^{CUSTOMER_ID_PREFIX}[A-Za-z0-9]{{{ULID_LENGTH}}}$"
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
    "TierWire": {"unit_amount": "non_negative", "up_to": "any", "flat_amount": "non_negative"},
    "AutoTopupWire": {"threshold": "any", "amount": "any"},
    "AutoTopupRequest": {"threshold": "any", "amount": "any"},
    "TransactionSearchRequest": {"credits_available_gt": "any"},
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

# domain/timefmt.py parse_rfc3339: RFC 3339 with a zone offset (no leap second), inside [EARLIEST, LATEST) whatever
# the offset: the years strictly between the bounds' years.
_YEARS = "|".join(str(year) for year in range(EARLIEST.year + 1, LATEST.year - 1))
TIMESTAMP_PATTERN = (f"^({_YEARS})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5]"
                     "[0-9](\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
# (component, field) → may it be "" (not given)? And the query parameters that are timestamps ("" not given).
TIMESTAMP_FIELDS: dict[str, dict[str, bool]] = {
    "CreateWalletRequest": {"initial_credits_expiry_date_utc": True},
    "TopUpRequest": {"expiry_date_utc": True},
    "IngestEventRequest": {"timestamp": True},
    "CreatePriceRequest": {"effective_from": True},
    "BillingRequest": {"anchor": False},
    "CustomerSearchRequest": {"start_time": True, "end_time": True},
    "AlertLogSearch": {"start_time": True, "end_time": True},
    "TransactionSearchRequest": {"expiry_date_before": True, "expiry_date_after": True, "start_time": True,
                                 "end_time": True},
    "EventsQuery": {"start_time": True, "end_time": True},
}
TIMESTAMP_QUERY_PARAMETERS = {"at", "start_time", "end_time", "expiry_date_before", "expiry_date_after"}
# Optional headers: absent means not given, and a header has no null (a client would send the text "null").
OPTIONAL_HEADERS = {"x-max-live"}


def _one_of_given(*names: str) -> dict[str, Any]:
    return {"anyOf": [{"required": [name], "properties": {name: {"not": {"enum": [None, ""]}}}} for name in names]}


def _given(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


_LEVELS = ("critical", "warning", "info")


def _all_levels(condition: str) -> dict[str, Any]:
    """Every threshold given has this condition ("below" is the default when it says none)."""
    rule: dict[str, Any] = {"properties": {"condition": {"const": condition}}}
    if condition != "below":
        rule["required"] = ["condition"]
    return {"properties": {level: {"anyOf": [{"type": "null"}, rule]} for level in _LEVELS}}


# domain/alerts.py check_settings, but for the strict order of the values (no JSON Schema keyword compares fields).
ALERT_RULES: dict[str, Any] = {"allOf": [
    {"if": _given("warning"), "then": _given("critical")},
    {"if": _given("info"), "then": {"anyOf": [_given("critical"), _given("warning")]}},
    {"if": {"required": ["alert_enabled"], "properties": {"alert_enabled": {"const": True}}},
     "then": {"anyOf": [_given(level) for level in _LEVELS]}},
    {"anyOf": [_all_levels("below"), _all_levels("above")]},
]}


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


_POSITIVE_TEXT = {"type": "string", "pattern": f"^({DECIMAL_PATTERNS['positive']})$"}

def _cooldown_value(unit: str, seconds: int) -> dict[str, Any]:
    """A cooldown in `unit`: a whole number of them within the bound (api/translate.py cooldown_seconds)."""
    return {"if": {"properties": {"unit": {"enum": [unit, unit.lower()]}}},
            "then": {"properties": {"value": {"type": "integer", "minimum": 0,
                                              "maximum": COOLDOWN_MAX_SECONDS // seconds}}}}


# Rules across fields, each merged into its component.
CROSS_FIELD_RULES: dict[str, dict[str, Any]] = {
    "CreateWalletRequest": _one_of_given("customer_id", "external_customer_id"),  # api/translate.py create_wallet
    "CreateCustomerRequest": {  # api/customer_directory.py: an external id never looks like a tally customer id
        "properties": {"external_id": {"not": {"pattern": CUSTOMER_ID_PATTERN}}},
    },
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
    "CreatePriceRequest": {  # domain/pricing.py check_price (but for the order of the tiers, across items)
        "if": {"properties": {"billing_model": {"const": "TIERED"}}},
        "then": {"required": ["tiers"], "properties": {"tiers": {"minItems": 1, "items": {"properties": {
            "up_to": decimal_schema({"anyOf": [{"type": t} for t in ("string", "integer", "number", "null")]},
                                    "positive", may_be_empty=True)}}}}},
    },
    "AlertSettingsWire": ALERT_RULES,
    "EndpointRequest": {  # api/webhooks.py add_endpoint
        "properties": {"url": {"maxLength": WEBHOOK_URL_MAX_LENGTH, "pattern": URL_PATTERN},
                       "secret": {"anyOf": [{"type": "string", "pattern": SECRET_PATTERN}, {"type": "null"}]}},
    },
    "CooldownWire": {"allOf": [_cooldown_value(unit, seconds) for unit, seconds in COOLDOWN_UNITS.items()]},
    "AutoTopupRequest": {  # domain/decide.py: enabled needs a threshold and a positive amount; api/translate.py
        "properties": {"cooldown_seconds": {"minimum": 0, "maximum": COOLDOWN_MAX_SECONDS}},
        "not": {"required": ["cooldown", "cooldown_seconds"],
                "properties": {"cooldown": {"not": {"type": "null"}}, "cooldown_seconds": {"not": {"type": "null"}}}},
        "if": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]},
        "then": {"required": ["threshold", "amount"],
                 "properties": {"threshold": {"not": {"type": "null"}},
                                "amount": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, _POSITIVE_TEXT]}}},
    },
}


def timestamp_schema(existing: dict[str, Any], may_be_empty: bool) -> dict[str, Any]:
    """The documented form of a timestamp: RFC 3339 within the bounds, or "" where that means "not given"."""
    options: list[dict[str, Any]] = existing.get("anyOf") or [existing]
    documented: list[dict[str, Any]] = [{"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}]
    if may_be_empty:
        documented.insert(0, {"type": "string", "enum": [""]})
    if any(option.get("type") == "null" for option in options):
        documented.append({"type": "null"})
    schema: dict[str, Any] = {"anyOf": documented} if len(documented) > 1 else documented[0]
    for keyword in ("default", "description", "title"):
        if keyword in existing:
            schema[keyword] = existing[keyword]
    return schema


def document_fields(schemas: dict[str, Any]) -> None:
    """Decimal and timestamp fields as they are checked (see DECIMAL_FIELDS and TIMESTAMP_FIELDS)."""
    for component, fields in DECIMAL_FIELDS.items():
        properties = schemas[component]["properties"]
        for name, sign in fields.items():
            properties[name] = decimal_schema(properties[name], sign, (component, name) not in REQUIRED_DECIMALS)
    for component, stamps in TIMESTAMP_FIELDS.items():
        properties = schemas[component]["properties"]
        for name, may_be_empty in stamps.items():
            properties[name] = timestamp_schema(properties[name], may_be_empty)


def document_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter["name"] in TIMESTAMP_QUERY_PARAMETERS and parameter["in"] == "query":
            parameter["schema"] = timestamp_schema(parameter["schema"], may_be_empty=True)
        if parameter["name"] in OPTIONAL_HEADERS and parameter["in"] == "header":
            parameter["schema"] = _not_null(parameter["schema"])


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    if len(options) != 1:
        return schema
    kept = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    return {**options[0], **kept}
