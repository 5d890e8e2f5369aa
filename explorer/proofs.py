"""A transaction's Merkle proofs, read from the node and checked before they are shown or
exported: the transaction hash and the receipt sit under the roots of the header the
explorer indexed (whose certificate it checked), and the receipt is the transaction's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from chain.errors import ChainError
from chain.merkle import MerkleProof, verify_proof
from chain.types import Header, Receipt
from explorer import store_schema as t
from explorer.node_feed import NodeFeed


class ProofRefused(Exception):
    """The node's proof does not match what the explorer indexed."""


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def verified_transaction_proof(
    c: Connection, feed: NodeFeed, tx_hash: str
) -> dict[str, Any] | None:
    """The checked proofs of ``tx_hash`` with the header and certificate they hang from, or
    None when the explorer has not indexed the transaction. Raises ProofRefused for a proof
    that does not check, NodeUnavailable when the node does not answer."""
    row = c.execute(
        select(
            t.transactions.c.height, t.transactions.c.position, t.transactions.c.receipt_raw
        ).where(t.transactions.c.hash == tx_hash)
    ).first()
    if row is None:
        return None
    block = c.execute(
        select(t.blocks.c.header_raw, t.blocks.c.certificate_raw, t.blocks.c.tx_count).where(
            t.blocks.c.height == row.height
        )
    ).first()
    assert block is not None, "an indexed transaction's block is indexed"
    tx_answer, receipt_answer = feed.batch(
        [
            ("lianxin_getTransactionProof", [tx_hash]),
            ("lianxin_getReceiptProof", [tx_hash]),
        ]
    )
    if not isinstance(tx_answer, dict) or not isinstance(receipt_answer, dict):
        raise ProofRefused("the node has no proof of this transaction")
    header = Header.decode(bytes(block.header_raw))
    try:
        tx_proof = MerkleProof.decode(_hex(tx_answer["proof"]["encoded"]))
        receipt_proof = MerkleProof.decode(_hex(receipt_answer["proof"]["encoded"]))
        receipt_leaf = _hex(receipt_answer["leaf"])
        verify_proof(header.tx_root, _hex(tx_hash), tx_proof, leaf_count=int(block.tx_count))
        verify_proof(
            header.receipt_root, receipt_leaf, receipt_proof, leaf_count=int(block.tx_count)
        )
        receipt = Receipt.decode(receipt_leaf)
    except (KeyError, ValueError, ChainError) as exc:
        raise ProofRefused(f"the node's proof does not check: {exc}") from exc
    if receipt.tx_hash.hex() != tx_hash.removeprefix("0x") or receipt_leaf != bytes(
        row.receipt_raw
    ):
        raise ProofRefused("the proven receipt is not the indexed receipt of this transaction")
    if tx_proof.leaf_index != int(row.position):
        raise ProofRefused("the proof places the transaction elsewhere in its block")
    return {
        "txHash": tx_hash,
        "height": int(row.height),
        "blockHash": "0x" + header.hash.hex(),
        "header": "0x" + header.encode().hex(),
        "certificate": None
        if block.certificate_raw is None
        else "0x" + bytes(block.certificate_raw).hex(),
        "transactionProof": {"leaf": tx_hash, "encoded": "0x" + tx_proof.encode().hex()},
        "receiptProof": {
            "leaf": "0x" + receipt_leaf.hex(),
            "encoded": "0x" + receipt_proof.encode().hex(),
        },
        "checked": [
            "tx under txRoot",
            "receipt under receiptRoot",
            "header as indexed",
            "certificate checked at indexing",
        ],
    }
