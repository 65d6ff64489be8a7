"""The wallet-balance OpenAPI contract as jsonschema validators: refs resolved, `date-time` really checked."""

import os
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, cast

import yaml
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4

SPEC_NAME = "wallet-balance.openapi.yaml"
SPEC_URI = "urn:tally:spec:wallet-balance"
ROOT = Path(__file__).resolve().parents[2]
SPEC_CANDIDATES = (ROOT / "spec" / SPEC_NAME, ROOT.parent / "shared" / "spec" / SPEC_NAME,
                   Path("/work/shared/spec") / SPEC_NAME)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def spec_path() -> Path:
    """TALLY_TEST_SPEC when set, else the first of the known places that holds the spec."""
    override = os.environ.get("TALLY_TEST_SPEC")
    if override:
        return Path(override)
    for candidate in SPEC_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{SPEC_NAME} not found in {[str(c) for c in SPEC_CANDIDATES]}; set TALLY_TEST_SPEC")


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(spec_path().read_text())
    return loaded


def component(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec()["components"]["schemas"][name]
    return schema


def is_rfc3339(value: object) -> bool:
    """RFC 3339 `date-time` (what OpenAPI means by it): a T, seconds, a zone, and a real calendar instant.

    jsonschema checks `date-time` only when the optional rfc3339-validator package is installed and silently
    passes every string otherwise, so the contract registers this checker itself.
    """
    if not isinstance(value, str):
        return True  # formats apply to strings only; `type` catches the rest
    if RFC3339.match(value) is None:
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checkers.pop("date-time", None)
    checker.checks("date-time")(is_rfc3339)
    return checker


@cache
def registry() -> Registry[Any]:
    return cast(Registry[Any], Registry().with_resource(SPEC_URI, DRAFT4.create_resource(spec())))


def validator(name: str) -> Draft4Validator:
    """A validator for `#/components/schemas/<name>` (OpenAPI 3.0 schemas read with draft-4 semantics)."""
    return Draft4Validator({"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=registry(),
                           format_checker=format_checker())


def problems(name: str, instance: object) -> list[str]:
    """Every violation of the named schema, as `path: message` lines (empty when the instance conforms)."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def refs_in(node: object) -> list[str]:
    """Every `$ref` string anywhere under a JSON/YAML node."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs_in(value)]
    return []
