"""Fixtures of the served data-sharing tests: the registry tests' dev chain (the same
session fixture, loaded from tests/registry/conftest.py) and one in-process registry per
module with the parties of a data-sharing scenario (the credit tables of tests/credit
provide credit records to share, the sample bags of tests/archives archive packages)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "registry"))
sys.path.insert(0, str(HERE.parent / "credit"))
sys.path.insert(0, str(HERE.parent / "archives"))

_spec = importlib.util.spec_from_file_location(
    "registry_tests_conftest", HERE.parent / "registry" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_registry_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_registry_conftest)

trust_chain = _registry_conftest.trust_chain
"""The dev chain with the trust contracts, shared by the session."""
database_url = _registry_conftest.database_url
"""A fresh database per test (PostgreSQL when LIANXIN_TEST_DATABASE_URL names a server)."""
