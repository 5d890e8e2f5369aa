"""Fixtures of the credit report and page tests: the public-credit registry tests' own
fixtures (the registry app on a fresh database with a fixed credit clock, and the shared dev
chain), loaded from tests/registry_credit/conftest.py rather than written twice."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_TESTS / "registry_credit"))

_spec = importlib.util.spec_from_file_location(
    "registry_credit_fixtures", _TESTS / "registry_credit" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

START = _fixtures.START
app = _fixtures.app
chain_app = _fixtures.chain_app
upload_limits = _fixtures.upload_limits
database_url = _fixtures.database_url
trust_chain = _fixtures.trust_chain
