"""domain/build_check.py: compiled modules built from other source than the domain/ beside them refuse to load."""

import hashlib
import json
import re
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from cli.settings import Settings
from domain import build_check
from domain.errors import ValidationFailed


def package(tmp_path: Path, compiled: bool, manifest: dict[str, str] | None) -> Path:
    root = tmp_path / "domain"
    root.mkdir()
    (root / "fold.py").write_text("X = 1\n")
    (root / "events.py").write_text("Y = 2\n")
    if compiled:
        (root / f"fold{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    if manifest is not None:
        (root / build_check.MANIFEST).write_text(json.dumps(manifest))
    return root


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


BUILT = {"domain/fold.py": digest("X = 1\n"), "domain/events.py": digest("Y = 2\n")}


def test_pure_python_needs_no_manifest(tmp_path: Path) -> None:
    assert build_check.stale(package(tmp_path, compiled=False, manifest=None)) == []


def test_a_build_of_the_same_sources_passes(tmp_path: Path) -> None:
    root = package(tmp_path, compiled=True, manifest=BUILT)
    assert build_check.stale(root) == []
    build_check.check(root)


def test_an_edited_module_compiled_or_not_is_named(tmp_path: Path) -> None:
    root = package(tmp_path, compiled=True, manifest=BUILT)
    (root / "events.py").write_text("Y = 3\n")  # pure, but the compiled fold was built against its types
    (root / "fold.py").write_text("X = 2\n")
    assert build_check.stale(root) == ["domain/events.py", "domain/fold.py"]
    with pytest.raises(build_check.StaleBuild, match=re.escape("domain/events.py, domain/fold.py: rebuild them")):
        build_check.check(root)


def test_an_added_or_removed_module_is_named(tmp_path: Path) -> None:
    root = package(tmp_path, compiled=True, manifest=BUILT)
    (root / "new.py").write_text("")
    (root / "events.py").unlink()
    assert build_check.stale(root) == ["domain/events.py", "domain/new.py"]


def test_extensions_without_a_manifest_are_stale(tmp_path: Path) -> None:
    assert build_check.stale(package(tmp_path, compiled=True, manifest=None)) == ["domain/events.py", "domain/fold.py"]


def test_this_install_is_consistent() -> None:
    """What `import domain` checked: the installed domain/ is pure, or compiled from exactly these sources."""
    assert build_check.stale(Path(build_check.__file__).parent) == []


def test_the_build_switch_is_no_unknown_setting() -> None:
    """`TALLY_BUILD_PURE=1` (setup.py) left in the environment does not stop a process; a misspelt setting does."""
    assert Settings.from_env({"TALLY_BUILD_PURE": "1"}) == Settings()
    with pytest.raises(ValidationFailed, match="unknown setting TALLY_BUILD"):
        Settings.from_env({"TALLY_BUILDPURE": "1"})
