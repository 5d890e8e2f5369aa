"""The dev chain the Ethereum compatibility tests share (one node process for all of them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from compat_harness import RunningDevChain, running_dev_chain


@pytest.fixture(scope="session")
def dev_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevChain]:
    """A dev chain's node process shared by the compatibility tests; killed at the end."""
    with running_dev_chain(tmp_path_factory.mktemp("devchain") / "chain") as chain:
        yield chain
