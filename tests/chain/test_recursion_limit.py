"""Whatever a dependency sets at import (``py_ecc`` raises the recursion limit to 100,000),
a process that imports the project's packages ends with the limit at
:data:`chain.limits.RECURSION_LIMIT`, also when web3 and eth_account are imported after them.
Checked in a fresh interpreter, since this one has imported everything already."""

from __future__ import annotations

import subprocess
import sys

from chain.limits import RECURSION_LIMIT

PROBE = """
import sys
import chain, sdk, node.daemon, registry.app
after_project = sys.getrecursionlimit()
import web3, eth_account, py_ecc
print(after_project, sys.getrecursionlimit())
"""


def test_imports_leave_the_recursion_limit_capped() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    after_project, after_web3 = (int(word) for word in completed.stdout.split())
    assert after_project == RECURSION_LIMIT
    assert after_web3 == RECURSION_LIMIT
