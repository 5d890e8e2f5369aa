"""The credit routers share what they share through registry.routers.credit_common, by
public names: none imports a private name (``_name``) of another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import registry.routers

pytestmark = pytest.mark.no_database

ROUTERS = Path(registry.routers.__file__).resolve().parent
CREDIT_ROUTERS = sorted(ROUTERS.glob("credit*.py"))


def test_the_credit_routers_import_no_private_name() -> None:
    assert {path.name for path in CREDIT_ROUTERS} >= {
        "credit.py",
        "credit_checks.py",
        "credit_common.py",
        "credit_pages.py",
    }
    private = [
        f"{path.name}: {node.module}.{alias.name}"
        for path in CREDIT_ROUTERS
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith("_") and node.module != "__future__"
    ]
    assert private == []
