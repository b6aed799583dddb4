"""digitlab uses MLflow and Hydra through their public APIs and plays no tricks on the
interpreter or the OS: a scan of its sources for the names that would say otherwise."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import digitlab

PACKAGE = Path(digitlab.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _imported_names(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _private(name: str) -> bool:
    return any(part.startswith("_") and part != "__future__" for part in name.split("."))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_of_mlflow_hydra_or_another_library_is_imported(path):
    private = [n for n in _imported_names(path)
               if not n.startswith("digitlab") and _private(n)]
    assert not private, f"{path.name} imports {private}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_patching_interpreter_tricks_or_linux_only_calls(path):
    text = path.read_text()
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    for pattern, what in ((r"\bunittest\.mock\b|\bmock\.patch\b", "a library patched"),
                          (r"\bos\._exit\b", "os._exit"),
                          (r"\bgc\.(freeze|disable|collect)\b", "the garbage collector"),
                          (r'"/proc', "/proc"),
                          (r"\bos\.(fdatasync|pidfd_open|sched_getaffinity)\(", "a Linux-only call"),
                          (r"\._engine_map\b|\.get_mode\s*=", "another library's insides")):
        assert not re.search(pattern, code), f"{path.name}: {what}"


def test_sql_touches_a_store_only_at_the_door():
    """store.check_store reads the Alembic version to refuse a foreign or half-made file; no
    other module runs SQL on MLflow's tables."""
    users = sorted(p.relative_to(PACKAGE).as_posix() for p in SOURCES
                   if "sqlite3" in p.read_text())
    assert users == ["tracking/store.py"]
    store = (PACKAGE / "tracking" / "store.py").read_text()
    tables = set(re.findall(r"(?:FROM|JOIN|INTO|UPDATE)\s+(\w+)", store))
    assert tables <= {"sqlite_master", "alembic_version"}, tables


def test_the_basic_sweeper_is_hydras_one_private_import_and_lives_in_the_plugin():
    plugins = Path(digitlab.__file__).parents[1] / "hydra_plugins"
    private = {str(p.relative_to(plugins)): [n for n in _imported_names(p) if _private(n)]
               for p in plugins.rglob("*.py")}
    private = {path: names for path, names in private.items() if names}
    assert private == {"digitlab_sweeper/preflighted_sweeper.py": [
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"]}
