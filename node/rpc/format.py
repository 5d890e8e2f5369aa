"""Ledger types → the JSON shapes of the Ethereum JSON-RPC API, as ethers and web3.py read them.

Quantities are minimal ``0x`` hex, byte strings are ``0x`` hex, addresses are lowercase
``0x`` hex. Ethereum fields without a meaning here get neutral values: difficulty 0, a zero
``logsBloom`` of 256 bytes (clients must use eth_getLogs rather than the bloom), no uncles.
Fees: a block's ``baseFeePerGas`` is the nominal :data:`node.rpc.fees.BASE_FEE_PER_GAS`,
while what a transaction paid (``gasPrice``, ``effectiveGasPrice``) is 0 (see
:mod:`node.rpc.fees`). The ledger's own fields are added under their own names
(``validatorSetHash``, ``lastCommitHash``, ``timestampMs``; transactions: see
:mod:`node.rpc.tx_shape`).
"""

from __future__ import annotations

from typing import Any

from chain.execution import sender_address
from chain.merkle import MerkleProof
from chain.types import Block, CommitCertificate, Header, Log, Receipt
from node.ledger import TxLookup
from node.log_index import LogEntry
from node.rpc.fees import BASE_FEE_PER_GAS

ZERO_BLOOM = "0x" + "00" * 256
EMPTY_UNCLES_HASH = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
ZERO_NONCE8 = "0x0000000000000000"


def quantity(value: int) -> str:
    """A non-negative integer as minimal ``0x`` hex."""
    return hex(value)


def data(value: bytes) -> str:
    """Bytes as ``0x`` hex."""
    return "0x" + value.hex()


def header_json(header: Header, *, size: int, gas_used: int, gas_limit: int) -> dict[str, Any]:
    """The header fields of an Ethereum block object."""
    return {
        "number": quantity(header.height),
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": ZERO_NONCE8,
        "sha3Uncles": EMPTY_UNCLES_HASH,
        "logsBloom": ZERO_BLOOM,
        "transactionsRoot": data(header.tx_root),
        "stateRoot": data(header.state_root),
        "receiptsRoot": data(header.receipt_root),
        "miner": data(header.proposer),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "size": quantity(size),
        "gasLimit": quantity(gas_limit),
        "gasUsed": quantity(gas_used),
        "timestamp": quantity(header.timestamp_ms // 1000),
        "timestampMs": quantity(header.timestamp_ms),
        "baseFeePerGas": hex(BASE_FEE_PER_GAS),
        "mixHash": data(bytes(32)),
        "validatorSetHash": data(header.validator_set_hash),
        "lastCommitHash": data(header.last_commit_hash),
        "uncles": [],
    }


def block_json(
    block: Block,
    receipts: tuple[Receipt, ...],
    *,
    gas_limit: int,
    full_transactions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An Ethereum block object with the given full transaction objects, or (``None``) the
    hashes of its transactions."""
    result = header_json(
        block.header,
        size=len(block.encode()),
        gas_used=sum(r.gas_used for r in receipts),
        gas_limit=gas_limit,
    )
    if full_transactions is not None:
        result["transactions"] = full_transactions
    else:
        result["transactions"] = [data(tx.hash) for tx in block.transactions]
    return result


def log_json(
    log: Log,
    *,
    block_hash: bytes,
    height: int,
    tx_hash: bytes,
    tx_index: int,
    log_index: int,
) -> dict[str, Any]:
    """An Ethereum log object."""
    return {
        "address": data(log.address),
        "topics": [data(t) for t in log.topics],
        "data": data(log.data),
        "blockHash": data(block_hash),
        "blockNumber": quantity(height),
        "transactionHash": data(tx_hash),
        "transactionIndex": quantity(tx_index),
        "logIndex": quantity(log_index),
        "removed": False,
    }


def log_entry_json(entry: LogEntry) -> dict[str, Any]:
    """A log found by a log query, as an Ethereum log object."""
    return log_json(
        entry.log,
        block_hash=entry.block_hash,
        height=entry.height,
        tx_hash=entry.tx_hash,
        tx_index=entry.tx_index,
        log_index=entry.log_index,
    )


def receipt_json(found: TxLookup, cumulative_gas_used: int) -> dict[str, Any]:
    """An Ethereum receipt object (``output`` carries the return or revert data)."""
    tx, block, receipt = found.tx, found.block, found.receipt
    return {
        "transactionHash": data(tx.hash),
        "transactionIndex": quantity(found.index),
        "blockHash": data(block.hash),
        "blockNumber": quantity(block.header.height),
        "from": data(sender_address(tx)),
        "to": None if tx.to is None else data(tx.to),
        "contractAddress": (
            None if receipt.contract_address is None else data(receipt.contract_address)
        ),
        "cumulativeGasUsed": quantity(cumulative_gas_used),
        "gasUsed": quantity(receipt.gas_used),
        "effectiveGasPrice": "0x0",
        "status": quantity(receipt.status),
        "logs": [
            log_json(
                log,
                block_hash=block.hash,
                height=block.header.height,
                tx_hash=tx.hash,
                tx_index=found.index,
                log_index=found.first_log_index + i,
            )
            for i, log in enumerate(receipt.logs)
        ],
        "logsBloom": ZERO_BLOOM,
        "type": "0x0",
        "output": data(receipt.output),
    }


def proof_json(proof: MerkleProof) -> dict[str, Any]:
    """A Merkle inclusion proof: index, leaf count, sibling path, and its canonical encoding."""
    return {
        "leafIndex": quantity(proof.leaf_index),
        "leafCount": quantity(proof.leaf_count),
        "path": [
            {"sibling": data(step.sibling), "siblingIsLeft": step.sibling_is_left}
            for step in proof.path
        ],
        "encoded": data(proof.encode()),
    }


def certificate_json(certificate: CommitCertificate | None) -> dict[str, Any] | None:
    """A commit certificate with its signatures, and its canonical encoding."""
    if certificate is None:
        return None
    return {
        "height": quantity(certificate.height),
        "round": quantity(certificate.round),
        "blockHash": data(certificate.block_hash),
        "signatures": [
            {"validator": data(s.validator), "signature": data(s.signature)}
            for s in certificate.signatures
        ],
        "hash": data(certificate.hash),
        "encoded": data(certificate.encode()),
    }


def ledger_header_json(header: Header) -> dict[str, Any]:
    """The ledger's own header fields and canonical encoding (for offline verification)."""
    return {
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "height": quantity(header.height),
        "timestampMs": quantity(header.timestamp_ms),
        "proposer": data(header.proposer),
        "txRoot": data(header.tx_root),
        "receiptRoot": data(header.receipt_root),
        "stateRoot": data(header.state_root),
        "validatorSetHash": data(header.validator_set_hash),
        "lastCommitHash": data(header.last_commit_hash),
        "encoded": data(header.encode()),
    }
