"""Fixtures for end-to-end tests: a dev chain made by the real ``lianxin`` entry point on a
free port, whose node processes are always killed when the test ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import DevChain, free_port, run_cli


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: real processes")


@pytest.fixture
def dev_chain(tmp_path: Path) -> Iterator[DevChain]:
    """A fresh dev chain (``lianxin init --dev`` on a free port); any node process still
    running on it when the test ends is killed."""
    root = tmp_path / "chain"
    port = free_port()
    result = run_cli("init", str(root), "--dev", "--rpc-port", str(port), "--json")
    assert result.code == 0, result
    chain = DevChain(root=root, port=port, accounts=result.json()["accounts"])
    try:
        yield chain
    finally:
        chain.kill_leftovers()
