"""The ``lianxin_*`` handlers: Merkle proofs, ledger headers with their commit certificates,
validator sets, consensus status and peers."""

from __future__ import annotations

from typing import Any

from chain.commit import Validator
from chain.primitives import Address
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.context import RpcContext
from node.rpc.errors import InvalidParams
from node.validator_sets import replaced_keys


class LianxinMethods:
    """Proof, validator and status handlers."""

    def __init__(self, ctx: RpcContext) -> None:
        self.ctx = ctx

    async def lianxin_get_transaction_proof(self, params: list[Any]) -> dict[str, Any] | None:
        """A Merkle proof that a transaction hash is a leaf under its block's tx root."""
        (hash_raw,) = p.positional(params, 1, 1, "lianxin_getTransactionProof")
        found = self.ctx.ledger.transaction_proof(p.hash32(hash_raw, "txHash"))
        if found is None:
            return None
        lookup, proof = found
        header = lookup.block.header
        return {
            "txHash": fmt.data(lookup.tx.hash),
            "leaf": fmt.data(lookup.tx.hash),
            "root": fmt.data(header.tx_root),
            "blockHash": fmt.data(header.hash),
            "blockNumber": fmt.quantity(header.height),
            "proof": fmt.proof_json(proof),
            "header": fmt.ledger_header_json(header),
        }

    async def lianxin_get_receipt_proof(self, params: list[Any]) -> dict[str, Any] | None:
        """A Merkle proof that a receipt's canonical encoding is a leaf under its block's
        receipt root."""
        (hash_raw,) = p.positional(params, 1, 1, "lianxin_getReceiptProof")
        found = self.ctx.ledger.receipt_proof(p.hash32(hash_raw, "txHash"))
        if found is None:
            return None
        lookup, proof = found
        header = lookup.block.header
        return {
            "txHash": fmt.data(lookup.tx.hash),
            "leaf": fmt.data(lookup.receipt.encode()),
            "root": fmt.data(header.receipt_root),
            "blockHash": fmt.data(header.hash),
            "blockNumber": fmt.quantity(header.height),
            "proof": fmt.proof_json(proof),
            "header": fmt.ledger_header_json(header),
        }

    async def lianxin_get_block_header(self, params: list[Any]) -> dict[str, Any] | None:
        """The ledger header of a block (by tag, number or hash) and its commit certificate."""
        (block_raw,) = p.positional(params, 0, 1, "lianxin_getBlockHeader")
        if isinstance(block_raw, str) and len(block_raw) == 66:
            selector = p.BlockSelector(block_hash=p.hash32(block_raw, "block"))
        else:
            selector = p.block_selector(block_raw, "block")
        header = self.ctx.header(selector)
        if header is None:
            return None
        return {
            "header": fmt.ledger_header_json(header),
            "certificate": fmt.certificate_json(self.ctx.ledger.certificate(header.height)),
        }

    async def lianxin_get_validators(self, params: list[Any]) -> dict[str, Any]:
        """The validator set ruling a height (the optional parameter, a quantity; by default
        the next height), its hash and the height it rules from; validators of the genesis
        set, and keys they rotated to, carry their genesis name."""
        (height_raw,) = p.positional(params, 0, 1, "lianxin_getValidators")
        next_height = self.ctx.ledger.head.height + 1
        height = next_height if height_raw is None else p.quantity(height_raw, "height")
        if not 1 <= height <= next_height:
            raise InvalidParams(f"height must be within 1..{next_height}")
        ruling = await self.ctx.off_loop(self.ctx.ledger.validator_set, height)
        names = await self.ctx.off_loop(self._names, ruling.validators.validators)
        return {
            "height": fmt.quantity(height),
            "since": fmt.quantity(ruling.since),
            "governed": self.ctx.ledger.governed,
            "validatorSetHash": fmt.data(ruling.validators.hash()),
            "validators": [
                {
                    "name": names.get(v.address, ""),
                    "address": fmt.data(v.address),
                    "publicKey": fmt.data(v.public_key),
                    "power": fmt.quantity(v.power),
                }
                for v in ruling.validators.validators
            ],
        }

    def _names(self, validators: tuple[Validator, ...]) -> dict[Address, str]:
        """Each validator's genesis name; a key that replaced a genesis key by rotation (one
        or more) carries the name of the key it replaced."""
        ledger = self.ctx.ledger
        genesis_names = {v.address: v.name for v in ledger.genesis.validators}
        names: dict[Address, str] = {}
        head = ledger.head
        for validator in validators:
            name = genesis_names.get(validator.address)
            if name is None and ledger.governed:
                replaced = replaced_keys(ledger, head, validator.address)
                name = next((genesis_names[a] for a in replaced if a in genesis_names), None)
            names[validator.address] = name or ""
        return names

    async def lianxin_get_consensus_status(self, params: list[Any]) -> dict[str, Any]:
        """Where consensus stands: dev mode commits every block at round 0."""
        p.positional(params, 0, 0, "lianxin_getConsensusStatus")
        head = self.ctx.ledger.head
        validator = self.ctx.ledger.validator_address
        return {
            "mode": "dev",
            "height": fmt.quantity(head.height),
            "round": "0x0",
            "headHash": fmt.data(head.hash),
            "validator": None if validator is None else fmt.data(validator),
            "validatorSetHash": fmt.data(head.validator_set_hash),
            "pendingTransactions": fmt.quantity(len(self.ctx.mempool)),
        }

    async def lianxin_get_peers(self, params: list[Any]) -> list[dict[str, Any]]:
        """Connected validator peers (none in single-node mode)."""
        p.positional(params, 0, 0, "lianxin_getPeers")
        return self.ctx.peers()
