"""The dev chain the Ethereum compatibility tests share (one node process for all of them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from compat_harness import RunningDevChain, running_dev_chain


def pytest_configure(config: pytest.Config) -> None:
    """web3.py's conformance suites (``web3._utils.module_testing``) mark their async tests
    ``asyncio`` at import; the marker is registered so that ``--strict-markers`` lets the
    module import (the async tests are not collected here)."""
    config.addinivalue_line("markers", "asyncio: an async test of web3.py's suites (unused)")


@pytest.fixture(scope="session")
def dev_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevChain]:
    """A dev chain's node process shared by the compatibility tests; killed at the end."""
    with running_dev_chain(tmp_path_factory.mktemp("devchain") / "chain") as chain:
        yield chain
