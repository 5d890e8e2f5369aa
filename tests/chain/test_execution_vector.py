"""A 50-transaction block pinned to a vector file: its state root, receipts and state writes
must not change when execution is reorganised for speed.

The vector (``tests/vectors/execution_block.json``) holds the encoded transactions, so SM2's
randomised signatures do not change the transaction hashes between runs. Regenerate it only
for an intended change of behaviour: ``.venv/bin/python tests/chain/test_execution_vector.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from chain.crypto import PrivateKey
from chain.execution import (
    SM3_PRECOMPILE,
    BlockContext,
    BlockExecution,
    execute_block,
    genesis_state,
)
from chain.primitives import Address, Hash32
from chain.types import Transaction
from contracts.artifacts import load_artifact

VECTOR = Path(__file__).resolve().parent.parent / "vectors" / "execution_block.json"
CHAIN_ID = 7
PROPOSER = Address(bytes.fromhex("00000000000000000000000000000000000000aa"))
PLAIN_ACCOUNT = Address(bytes.fromhex("00000000000000000000000000000000000000cc"))


def _context(height: int) -> BlockContext:
    return BlockContext(
        chain_id=CHAIN_ID,
        height=height,
        timestamp_ms=1_700_000_000_000 + 1_000 * height,
        proposer=PROPOSER,
    )


def _writes_digest(execution: BlockExecution) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(execution.writes.items()):
        digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
    return digest.hexdigest()


def _outcome(execution: BlockExecution) -> dict[str, Any]:
    return {
        "state_root": execution.state_root.hex(),
        "receipts": [receipt.encode().hex() for receipt in execution.receipts],
        "writes_count": len(execution.writes),
        "writes_sha256": _writes_digest(execution),
    }


def _run(blocks: list[list[Transaction]]) -> list[BlockExecution]:
    update = genesis_state({})
    store: dict[bytes, bytes] = dict(update.writes)
    root = update.state_root
    results = []
    for height, transactions in enumerate(blocks, start=1):
        execution = execute_block(store, root, _context(height), transactions)
        store.update(execution.writes)
        root = execution.state_root
        results.append(execution)
    return results


def _build_blocks() -> list[list[Transaction]]:
    """Block 1 deploys Anchor; block 2 holds 50 transactions from three senders: anchors
    (fresh and repeated roots), one out of gas, one reverting call, a contract creation, a
    call to the SM3 precompile and a plain call to an account without code."""
    keys = [PrivateKey.from_bytes(hashlib.sha256(b"key %d" % n).digest()) for n in range(3)]
    counter = 0

    def sign(key: PrivateKey, to: Address | None, data: bytes, gas_limit: int) -> Transaction:
        nonlocal counter
        counter += 1
        unsigned = Transaction(
            chain_id=CHAIN_ID,
            nonce=Hash32(hashlib.sha256(b"vector nonce %d" % counter).digest()),
            block_limit=100,
            to=to,
            value=0,
            data=data,
            gas_limit=gas_limit,
            public_key=key.public_key.to_bytes(),
        )
        return dataclasses.replace(unsigned, signature=key.sign(unsigned.sign_bytes()))

    deploy = sign(keys[0], None, load_artifact("Anchor").bytecode, 3_000_000)
    (anchor_address,) = (r.contract_address for r in _run([[deploy]])[0].receipts)
    assert anchor_address is not None
    anchor = keccak(text="anchor(bytes32)")[:4]
    block: list[Transaction] = []
    for index in range(50):
        key = keys[index % 3]
        root = hashlib.sha256(b"root %d" % (index % 20)).digest()
        if index == 10:
            block.append(sign(key, anchor_address, anchor + root, 23_000))
        elif index == 20:
            block.append(sign(key, anchor_address, keccak(text="nothing()")[:4], 100_000))
        elif index == 30:
            block.append(sign(key, None, load_artifact("Counter").bytecode, 3_000_000))
        elif index == 40:
            block.append(sign(key, SM3_PRECOMPILE, b"abc" * 40, 100_000))
        elif index == 45:
            block.append(sign(key, PLAIN_ACCOUNT, b"", 100_000))
        else:
            block.append(sign(key, anchor_address, anchor + root, 100_000))
    return [[deploy], block]


def _load() -> dict[str, Any]:
    with VECTOR.open() as file:
        vector: dict[str, Any] = json.load(file)
    return vector


def test_fifty_transaction_block_matches_the_vector() -> None:
    vector = _load()
    blocks = [
        [Transaction.decode(bytes.fromhex(raw)) for raw in block["transactions"]]
        for block in vector["blocks"]
    ]
    results = _run(blocks)
    assert len(blocks[1]) == 50
    for block, execution in zip(vector["blocks"], results, strict=True):
        assert _outcome(execution) == block["expected"]


def _regenerate() -> None:
    blocks = _build_blocks()
    results = _run(blocks)
    vector = {
        "description": "execute_block on genesis {}: block 1 deploys Anchor, block 2 holds 50 "
        "transactions (see tests/chain/test_execution_vector.py); chain id 7",
        "blocks": [
            {"transactions": [tx.encode().hex() for tx in block], "expected": _outcome(result)}
            for block, result in zip(blocks, results, strict=True)
        ],
    }
    VECTOR.write_text(json.dumps(vector, indent=1) + "\n")


if __name__ == "__main__":
    _regenerate()
