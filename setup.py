"""Compiles the pure modules listed in pyproject.toml [tool.tally.mypyc] to C extensions with mypyc.

Beside them it writes domain/compiled.json, the SHA-256 of every domain/ source the build saw (the compiled ones
and the pure ones whose types they were compiled against), which domain/build_check.py compares at import time
(README: Development). TALLY_BUILD_PURE=1 builds pure Python (no extension, no manifest).
"""

import ast
import hashlib
import json
import os
import tomllib
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
MANIFEST = HERE / "domain" / "compiled.json"


def compiled_modules() -> list[str]:
    with open(HERE / "pyproject.toml", "rb") as f:
        modules: list[str] = tomllib.load(f)["tool"]["tally"]["mypyc"]["modules"]
    for path in modules:
        tree = ast.parse((HERE / path).read_text(), path)
        keyworded = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.keywords]
        if keyworded:  # mypyc would drop the keywords silently (a Struct's frozen, kw_only, tag, array_like...)
            raise SystemExit(f"{path} cannot be compiled: class keywords on {', '.join(keyworded)}")
    return modules


if os.environ.get("TALLY_BUILD_PURE") == "1":
    MANIFEST.unlink(missing_ok=True)
    setup()
else:
    from mypyc.build import mypycify

    sources = compiled_modules()
    seen = sorted(p.relative_to(HERE).as_posix() for p in (HERE / "domain").glob("*.py"))
    digests = {path: hashlib.sha256((HERE / path).read_bytes()).hexdigest() for path in seen}
    extensions = mypycify(sources, opt_level="3")
    MANIFEST.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    setup(ext_modules=extensions)
