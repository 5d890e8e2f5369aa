"""Sending a transaction from the ``lianxin`` command line: sign it with a keystore's key,
hand it to the node with ``eth_sendRawTransaction`` and wait for its receipt.

Failures exit as the other shared CLI functions do (:func:`node.cli_common.fail`): 3 if the
node cannot be reached, 1 if it refuses the transaction, the gas estimate reverts, or no
receipt arrives in time.
"""

from __future__ import annotations

import os
import time
from typing import Any

from chain.crypto import PrivateKey
from chain.primitives import Address, Hash32
from chain.types import Transaction
from chain.validation import sign_transaction
from node.cli_common import (
    EXIT_BAD,
    GAS_MARGIN_PERCENT,
    RECEIPT_TIMEOUT_S,
    RevertDescriber,
    call,
    fail,
    to_hex,
)

BLOCK_LIMIT_WINDOW = 100
"""Blocks above the current height during which the transaction may still be included. Well
inside the node's limit (1,000 by default), and far more blocks than the receipt wait spans."""

RECEIPT_POLL_S = 0.2
"""Pause between two receipt requests. The node itself holds each request open until the
block commits or its own wait ends, so this only paces the retries."""


def send_transaction(
    url: str,
    key: PrivateKey,
    *,
    to: Address | None,
    data: bytes,
    gas: int | None,
    timeout: float = RECEIPT_TIMEOUT_S,
    describe_revert: RevertDescriber | None = None,
) -> dict[str, Any]:
    """Sign a transaction of ``data`` to ``to`` (None: a deployment) from ``key``, send it to
    the node at ``url``, and return its receipt once committed, whatever its status. Without
    ``gas``, the limit is the node's estimate plus a margin; an estimate that reverts exits
    with the reason ``describe_revert`` gives."""
    chain_id = int(call(url, "eth_chainId", []), 16)
    height = int(call(url, "eth_blockNumber", []), 16)
    if gas is None:
        gas = _estimate_gas(url, key, to, data, describe_revert)
    unsigned = Transaction(
        chain_id=chain_id,
        nonce=Hash32(os.urandom(32)),
        block_limit=height + BLOCK_LIMIT_WINDOW,
        to=to,
        value=0,
        data=data,
        gas_limit=gas,
        public_key=key.public_key.to_bytes(),
    )
    signed = sign_transaction(unsigned, key)
    tx_hash = str(call(url, "eth_sendRawTransaction", [to_hex(signed.encode())]))
    return wait_for_receipt(url, tx_hash, timeout)


def wait_for_receipt(url: str, tx_hash: str, timeout: float) -> dict[str, Any]:
    """The receipt of ``tx_hash``, asked for until it arrives; exits 1 if it has not after
    ``timeout`` seconds. The last request is made after the deadline has passed, so a receipt
    that arrives during the final pause is not missed."""
    deadline = time.monotonic() + timeout
    while True:
        receipt = call(url, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return dict(receipt)
        if time.monotonic() >= deadline:
            raise fail(f"no receipt for {tx_hash} within {timeout:g} s", EXIT_BAD)
        time.sleep(RECEIPT_POLL_S)


def _estimate_gas(
    url: str,
    key: PrivateKey,
    to: Address | None,
    data: bytes,
    describe_revert: RevertDescriber | None,
) -> int:
    request: dict[str, Any] = {"from": to_hex(key.public_key.address), "data": to_hex(data)}
    if to is not None:
        request["to"] = to_hex(to)
    estimate = int(call(url, "eth_estimateGas", [request], describe_revert), 16)
    return estimate + estimate * GAS_MARGIN_PERCENT // 100
