"""A typical Solidity project's own test suite (tests/compat/erc20: an ERC-20 and its mocha +
ethers tests, written the way a Hardhat project writes them) runs against the dev node."""

from __future__ import annotations

import os
import re
import subprocess

from compat_harness import REPO, RunningDevChain, node_js

PROJECT = REPO / "tests" / "compat" / "erc20"
SUITE_TESTS = 19
"""The tests of the project's suite: all must run, and pass."""


def test_token_project_suite_passes(dev_chain: RunningDevChain) -> None:
    node = node_js()
    done = subprocess.run(
        [node, str(REPO / "node_modules" / "mocha" / "bin" / "mocha.js"), "--reporter", "dot"],
        cwd=PROJECT,
        env={**os.environ, "RPC_URL": dev_chain.url},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    passing = re.search(r"(\d+) passing", done.stdout)
    assert passing is not None and int(passing.group(1)) == SUITE_TESTS, done.stdout
