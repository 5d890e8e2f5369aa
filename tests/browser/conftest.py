"""Fixtures of the browser tests: the registry tests' fixtures (a dev chain node as a real
process with the trust contracts bootstrapped, a fresh database per test) are reused."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REGISTRY_TESTS = Path(__file__).resolve().parent.parent / "registry"
sys.path.insert(0, str(REGISTRY_TESTS))

_spec = importlib.util.spec_from_file_location(
    "registry_tests_conftest", REGISTRY_TESTS / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

trust_chain = _fixtures.trust_chain
database_url = _fixtures.database_url
settings = _fixtures.settings
