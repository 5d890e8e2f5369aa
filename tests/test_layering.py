"""The dependency rule of the architecture: imports between top-level packages point one way.

    registry -> credit, archives, authorizations -> sdk -> contracts -> chain
    explorer -> sdk -> contracts -> chain
    node -> contracts -> chain
    registry, explorer -> serving (HTTP serving plumbing; imports none of the others)

``node`` and ``sdk`` never import each other, and only ``chain/execution/`` imports py-evm.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "chain",
    "contracts",
    "node",
    "sdk",
    "registry",
    "credit",
    "archives",
    "authorizations",
    "explorer",
    "serving",
)

ALLOWED: dict[str, set[str]] = {
    "chain": set(),
    "contracts": {"chain"},
    "node": {"contracts", "chain"},
    "sdk": {"contracts", "chain"},
    "credit": {"sdk", "contracts", "chain"},
    "archives": {"sdk", "contracts", "chain"},
    "authorizations": {"sdk", "contracts", "chain"},
    "registry": {
        "credit",
        "archives",
        "authorizations",
        "sdk",
        "contracts",
        "chain",
        "serving",
    },
    "explorer": {"sdk", "contracts", "chain", "serving"},
    "serving": set(),
}

# Libraries that do I/O or reach the outside world; chain/ must stay pure.
CHAIN_FORBIDDEN_LIBS = {
    "socket",
    "asyncio",
    "http",
    "urllib",
    "sqlite3",
    "sqlalchemy",
    "lmdb",
    "requests",
    "httpx",
    "subprocess",
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name imported by the file at ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_dependency_rule(package: str) -> None:
    violations = []
    for path in python_files(package):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in PACKAGES and top != package and top not in ALLOWED[package]:
                violations.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not violations, "\n".join(violations)


def test_chain_does_no_io() -> None:
    violations = []
    for path in python_files("chain"):
        for module in imported_modules(path):
            if module.split(".")[0] in CHAIN_FORBIDDEN_LIBS:
                violations.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not violations, "\n".join(violations)


def test_only_execution_imports_py_evm() -> None:
    importers = {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in python_files(package)
        if any(m == "eth" or m.startswith("eth.") for m in imported_modules(path))
    }
    assert all(path.startswith("chain/execution/") for path in importers), importers


def test_rule_checker_sees_a_wrong_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from node.storage import lmdb_store\nimport sdk\n", encoding="utf-8")
    assert {"node.storage", "sdk"} <= imported_modules(bad)
