"""Refuses to run compiled modules built from other source than the domain/ beside them (README: Development).

The build (setup.py) compiles the modules listed in pyproject.toml with mypyc and records in domain/compiled.json
the SHA-256 of every domain/ source it saw: the compiled ones, and the pure ones whose types they were compiled
against. Python imports an extension module in preference to the .py of the same name, so after an edit the old
compiled code would run silently; `domain/__init__.py` calls `check()` before any other domain module loads, and
it raises StaleBuild naming every source that differs. This reads the package's own files once per process (build
plumbing, not domain logic); with no extension in domain/ it reads nothing more than the directory.
"""

import hashlib
import json
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

MANIFEST = "compiled.json"
FIX = ("rebuild them (`make .venv/.installed`, or `.venv/bin/pip install --no-deps -e .`), or go back to pure "
       "Python (`make pure`)")


class StaleBuild(ImportError):
    """A compiled module was built from other source than the package holds now."""


def stale(package: Path) -> list[str]:
    """The domain/ sources added, changed or removed since the extensions in `package` were built; [] when none
    is compiled (pure Python)."""
    if not any(p.name.endswith(tuple(EXTENSION_SUFFIXES)) for p in package.iterdir()):
        return []
    manifest = package / MANIFEST
    recorded: dict[str, str] = json.loads(manifest.read_text()) if manifest.exists() else {}
    now = {f"{package.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in package.glob("*.py")}
    return sorted(name for name in recorded.keys() | now.keys() if recorded.get(name) != now.get(name))


def check(package: Path = Path(__file__).resolve().parent) -> None:
    found = stale(package)
    if found:
        raise StaleBuild(f"the compiled modules were built from other source than {', '.join(found)}: {FIX}")
