"""A checked block turned into the explorer's rows: the block, its transactions with decoded
calls, decoded events and what each is about, the certificate's signers, contracts deployed,
and the validator-set changes and proposal keys it records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chain.commit import ValidatorSet
from chain.execution import sender_address
from explorer.block_check import SetChange
from explorer.decoding import ContractBook, Decoded, address_hex, event_subjects
from explorer.node_feed import FetchedBlock


def hex0x(value: bytes) -> str:
    """``0x`` hex."""
    return "0x" + bytes(value).hex()


@dataclass(frozen=True)
class EventRow:
    """One decoded event and its subjects."""

    row: dict[str, Any]
    """The ``events`` row (without its id)."""
    decoded: Decoded
    """The decoded event."""
    subjects: list[tuple[str, str]]
    """(kind, key) pairs for ``event_subjects``."""


@dataclass
class BlockRows:
    """Everything one block adds to the index, written in one transaction."""

    height: int
    block_hash: str
    block: dict[str, Any]
    transactions: list[dict[str, Any]] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    signers: list[dict[str, Any]] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    proposal_keys: list[dict[str, Any]] = field(default_factory=list)
    set_changes: list[dict[str, Any]] = field(default_factory=list)


def build_rows(
    fetched: FetchedBlock,
    *,
    validators: ValidatorSet,
    book: ContractBook,
    proposal_keys: dict[int, tuple[bytes, int]],
) -> BlockRows:
    """The rows of a checked block. Contracts it deploys are placed in ``book`` and the
    proposals it makes are added to ``proposal_keys`` as it goes, so that later transactions
    of the same block decode against them; the caller persists both with the rows."""
    header = fetched.header
    certificate = fetched.certificate
    signed = set() if certificate is None else {bytes(s.validator) for s in certificate.signatures}
    signed_power = sum(v.power for v in validators.validators if bytes(v.address) in signed)
    rows = BlockRows(
        height=fetched.height,
        block_hash=hex0x(header.hash),
        block={
            "height": fetched.height,
            "hash": hex0x(header.hash),
            "parent_hash": hex0x(header.parent_hash),
            "timestamp_ms": header.timestamp_ms,
            "proposer": hex0x(header.proposer),
            "tx_count": len(fetched.transactions),
            "size": fetched.size,
            "gas_used": sum(r.gas_used for r in fetched.receipts),
            "state_root": hex0x(header.state_root),
            "tx_root": hex0x(header.tx_root),
            "receipt_root": hex0x(header.receipt_root),
            "validator_set_hash": hex0x(header.validator_set_hash),
            "header_raw": header.encode(),
            "certificate_raw": None if certificate is None else certificate.encode(),
            "certificate_round": None if certificate is None else certificate.round,
            "signed_power": signed_power if fetched.height > 0 else 0,
            "total_power": validators.total_power,
        },
    )
    if fetched.height > 0:
        rows.signers = [
            {
                "height": fetched.height,
                "validator": hex0x(v.address),
                "signed": bytes(v.address) in signed,
                "power": v.power,
            }
            for v in validators.validators
        ]
    for position, (tx, receipt) in enumerate(
        zip(fetched.transactions, fetched.receipts, strict=True)
    ):
        tx_hash = hex0x(tx.hash)
        deployed = None
        if tx.to is None and receipt.status == 1 and receipt.contract_address is not None:
            deployed = book.recognise_deployment(tx.data)
            if deployed is not None:
                book.place(receipt.contract_address, deployed)
                rows.contracts.append(
                    {
                        "address": hex0x(receipt.contract_address),
                        "name": deployed,
                        "height": fetched.height,
                        "tx_hash": tx_hash,
                    }
                )
        call = book.decode_call(tx.to, tx.data)
        rows.transactions.append(
            {
                "hash": tx_hash,
                "height": fetched.height,
                "position": position,
                "sender": hex0x(sender_address(tx)),
                "to_address": address_hex(tx.to),
                "status": receipt.status,
                "gas_used": receipt.gas_used,
                "gas_limit": tx.gas_limit,
                "contract_address": address_hex(receipt.contract_address),
                "contract": deployed if call is None else call.contract,
                "call_name": "(deploy)" if deployed else (None if call is None else call.name),
                "call_args": None if call is None else json.dumps(call.args, ensure_ascii=False),
                "raw": tx.encode(),
                "receipt_raw": receipt.encode(),
            }
        )
        for log_index, log in enumerate(receipt.logs):
            decoded = book.decode_log(log)
            if decoded is None:
                continue
            rows.events.append(
                EventRow(
                    row={
                        "height": fetched.height,
                        "tx_hash": tx_hash,
                        "log_index": log_index,
                        "contract": decoded.contract,
                        "address": hex0x(log.address),
                        "name": decoded.name,
                        "args": json.dumps(decoded.args, ensure_ascii=False),
                    },
                    decoded=decoded,
                    subjects=event_subjects(decoded),
                )
            )
            _governance(decoded, call, fetched.height, rows, proposal_keys)
    return rows


def _governance(
    event: Decoded,
    call: Decoded | None,
    height: int,
    rows: BlockRows,
    proposal_keys: dict[int, tuple[bytes, int]],
) -> None:
    """Proposal keys and executed validator changes from ValidatorGovernance events."""
    if event.contract != "ValidatorGovernance":
        return
    proposal_id = int(event.args["id"])
    if event.name == "Proposed" and call is not None and call.name == "propose":
        key = bytes.fromhex("04" + call.args["keyX"][2:] + call.args["keyY"][2:])
        proposal_keys[proposal_id] = (key, int(event.args["power"]))
        rows.proposal_keys.append(
            {
                "proposal_id": proposal_id,
                "public_key": hex0x(key),
                "power": int(event.args["power"]),
            }
        )
    elif event.name == "Executed" and proposal_id in proposal_keys:
        key, _ = proposal_keys[proposal_id]
        rows.set_changes.append(
            {
                "effective_height": int(event.args["effectiveHeight"]),
                "executed_height": height,
                "address": str(event.args["validator"]),
                "public_key": hex0x(key),
                "power": int(event.args["power"]),
                "proposal_id": proposal_id,
            }
        )


def set_change_of(row: dict[str, Any]) -> SetChange:
    """A validator_changes row as a timeline change."""
    return SetChange(
        effective_height=int(row["effective_height"]),
        public_key=bytes.fromhex(str(row["public_key"])[2:]),
        power=int(row["power"]),
    )
