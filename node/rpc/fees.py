"""What the node answers about fees.

Gas bounds work on this chain; it is not money (execution runs with a gas price of 0 and
charges no one). Ethereum clients still ask for fee data before they send, and give up on a
chain whose blocks carry a base fee of 0 (ethers' ``getFeeData`` then answers ``null`` for
the EIP-1559 fields). So the node answers a nominal, non-zero price, and reports what was
really paid:

- ``baseFeePerGas`` of every block, ``eth_gasPrice`` and the base fees of ``eth_feeHistory``:
  :data:`BASE_FEE_PER_GAS` (1 wei);
- ``eth_maxPriorityFeePerGas`` and the rewards of ``eth_feeHistory``: 0 (there is no tip);
- ``eth_blobBaseFee``: :data:`BLOB_BASE_FEE_PER_GAS` (1 wei, EIP-4844's least): no
  transaction carries blobs, but clients ask;
- a transaction's ``gasPrice`` and a receipt's ``effectiveGasPrice``: 0, because nothing was
  charged, so that ``gasUsed * effectiveGasPrice`` matches the sender's balance change as
  clients and test suites compute it.

Whatever fee fields a client puts in ``eth_sendTransaction`` are checked for form and
otherwise ignored. Charging fees would be a consensus change (every node must debit the same
amounts) and would make every account need a balance; the chain does not do it.
"""

from __future__ import annotations

BASE_FEE_PER_GAS = 1
"""The nominal base fee, in wei, that blocks and eth_gasPrice report."""
PRIORITY_FEE_PER_GAS = 0
"""The suggested tip: none."""
BLOB_BASE_FEE_PER_GAS = 1
"""The nominal blob base fee, in wei, that eth_blobBaseFee reports (EIP-4844's minimum)."""
