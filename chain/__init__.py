"""The protocol core of lianxin: pure, deterministic ledger code.

``py_ecc`` (which py-evm and eth-account import) raises the interpreter's recursion limit to
100,000 the first time it is imported. It is imported here, before anything else of ours, so
that its side effect happens once and is undone at once: see :mod:`chain.limits`.
"""

import py_ecc  # noqa: F401  (imported for its import-time side effect, which is then capped)

from chain.limits import cap_recursion_limit

cap_recursion_limit()
