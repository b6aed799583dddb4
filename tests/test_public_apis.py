"""digitlab uses MLflow and Hydra through their public APIs and plays no tricks on the
interpreter or the OS: a scan of its sources for the names that would say otherwise."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import digitlab

PACKAGE = Path(digitlab.__file__).parent
PLUGINS = PACKAGE.parent / "hydra_plugins"
SOURCES = sorted([*PACKAGE.rglob("*.py"), *PLUGINS.rglob("*.py")])
# MLflow documents its modules one by one (mlflow.entities, mlflow.tracking, mlflow.pyfunc, …);
# these hold its implementation
UNDOCUMENTED = ("mlflow.store.", "mlflow.utils.", "mlflow.server.", "mlflow.tracking._")


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


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


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_no_private_name_or_undocumented_module_of_another_library_is_imported(path):
    private = [n for n in _imported_names(path) if not n.startswith("digitlab")
               and (_private(n) or n.startswith(UNDOCUMENTED))]
    assert not private, f"{path.name} imports {private}"


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_no_file_of_another_package_is_opened_by_its_path(path):
    code = path.read_text()
    assert not re.search(r"find_spec\(|submodule_search_locations|site-packages", code), path.name


@pytest.mark.parametrize("path", SOURCES, ids=_name)
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
