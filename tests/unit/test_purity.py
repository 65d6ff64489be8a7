"""domain/ stays pure: no I/O, clock, randomness or framework imports, and no reading of the current time."""

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN_MODULES = frozenset(
    {"redis", "fastapi", "starlette", "os", "time", "random", "uuid", "socket", "asyncio"}
)
CLOCK_CALLS = frozenset(
    {"datetime.now", "datetime.utcnow", "date.today", "datetime.today", "time.time",
     "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.date.today", "datetime.datetime.today"}
)


def dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it was imported as: `from datetime import datetime as dt` gives dt -> datetime.datetime."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update({a.asname or a.name: a.name for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return names


def imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module]
    return []


def clock_call(node: ast.AST, names: dict[str, str]) -> str | None:
    """The dotted name of a call that reads the clock, resolving import aliases; None for any other node."""
    if not isinstance(node, ast.Call) or (name := dotted(node.func)) is None:
        return None
    head, _, rest = name.partition(".")
    resolved = ".".join(filter(None, [names.get(head, head), rest]))
    return name if name in CLOCK_CALLS or resolved in CLOCK_CALLS else None


def impurities(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import and clock reading in `source`, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    names = aliases(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        found += [f"{filename}:{line}: imports {module}" for module in imported_modules(node)
                  if module.split(".")[0] in FORBIDDEN_MODULES]
        if call := clock_call(node, names):
            found.append(f"{filename}:{line}: calls {call}()")
    return found


def domain_files() -> list[Path]:
    return sorted(DOMAIN.glob("*.py"))


def test_the_domain_package_is_found() -> None:
    names = {path.name for path in domain_files()}
    assert {"events.py", "fold.py", "lots.py", "balance.py", "decide.py", "codec.py"} <= names


@pytest.mark.parametrize("path", domain_files(), ids=lambda path: path.name)
def test_a_domain_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    assert impurities(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import redis", "imports redis"),
        ("import redis.asyncio as r", "imports redis.asyncio"),
        ("from fastapi import FastAPI", "imports fastapi"),
        ("from starlette.requests import Request", "imports starlette.requests"),
        ("import os", "imports os"),
        ("import time", "imports time"),
        ("from random import choice", "imports random"),
        ("import uuid", "imports uuid"),
        ("import socket", "imports socket"),
        ("import asyncio", "imports asyncio"),
        ("from datetime import datetime\ndatetime.now()", "calls datetime.now()"),
        ("from datetime import datetime as dt\ndt.utcnow()", "calls dt.utcnow()"),
        ("import datetime\ndatetime.datetime.now(tz=None)", "calls datetime.datetime.now()"),
        ("from datetime import date\ndate.today()", "calls date.today()"),
        ("import datetime as d\nd.date.today()", "calls d.date.today()"),
        ("def f(time):\n    return time.time()", "calls time.time()"),
    ],
)
def test_the_checker_catches_what_it_forbids(source: str, problem: str) -> None:
    found = impurities(source)
    assert any(line.endswith(problem) for line in found), found


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import UTC, datetime\nx = datetime(2025, 1, 1, tzinfo=UTC)",
        "from datetime import datetime\nx = datetime.fromisoformat('2025-01-01T00:00:00+00:00')",
        "import msgspec\nfrom decimal import Decimal",
        "from domain.money import ZERO",
        "import timeit_like_name as osx",
    ],
)
def test_the_checker_lets_pure_code_through(source: str) -> None:
    assert impurities(source) == []
