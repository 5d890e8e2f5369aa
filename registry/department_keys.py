"""The departments' own keys on chain: the IssuerRegistry records of the keys that signed
the records of a batch, read at its anchoring block for the batch's proof bundles; and the
registration of a department's client key in IssuerRegistry (an operator's governance
step, needed before its signed records verify)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contracts.trust import OPEN_ENDED, Role, account_of, uscc_bytes
from registry.chain_gateway import ISSUER_REGISTRY, ChainGateway, EvidenceNotReady
from registry.errors import RegistryError
from sdk.account import Sm2Account
from sdk.bundle import IssuerKeyClaim
from sdk.bundle_links import issuer_key_json
from sdk.chain_reader import CallReverted


class KeyRegistrationFailed(RegistryError):
    """A governance transaction registering a department or key reverted."""

    code = "key_registration_failed"


def department_key_claims(
    gateway: ChainGateway, public_keys: Iterable[str], height: int
) -> dict[str, dict[str, Any]]:
    """For each hex public key: ``{"name": department name, "key": its IssuerRegistry key
    record as bundle JSON}`` read at block ``height``, or ``{"name": "", "key": None}`` if
    the key was not registered there (the record's department link then fails)."""
    contracts = gateway.contracts()
    claims: dict[str, dict[str, Any]] = {}
    for key_hex in sorted(set(public_keys)):
        public_key = bytes.fromhex(key_hex)
        try:
            uscc, key_id, record = gateway.issuer_key_at(account_of(public_key), height)
        except EvidenceNotReady:
            claims[key_hex] = {"name": "", "key": None}
            continue
        name, _frozen, _count = ISSUER_REGISTRY.decode_result(
            "departmentInfo",
            gateway.reader.call(
                contracts.issuer_registry,
                ISSUER_REGISTRY.encode_call("departmentInfo", uscc_bytes(uscc)),
                height,
            ),
        )
        claim = IssuerKeyClaim(
            issuer_registry=contracts.issuer_registry,
            uscc=uscc,
            key_id=key_id,
            public_key=bytes(record.public_key),
            roles=int(record.roles),
            valid_from_block=record.valid_from_block,
            valid_until_block=record.valid_until_block,
            read_at_block=height,
        )
        claims[key_hex] = {"name": str(name), "key": issuer_key_json(claim)}
    return claims


def register_department_key(
    gateway: ChainGateway,
    governance: Sm2Account,
    *,
    uscc: str,
    department_name: str,
    public_key: bytes,
    roles: Role = Role.ISSUER | Role.REVOKER,
) -> None:
    """Register department ``uscc`` (if it is not) and ``public_key`` (if it is not) in
    IssuerRegistry with ``roles`` from now on, signed by the governance account. A
    department client's key must be registered so, for the records it signs to verify.
    Raises KeyRegistrationFailed."""
    reader = gateway.reader
    registry = gateway.contracts().issuer_registry
    department = uscc_bytes(uscc)

    def send(data: bytes) -> None:
        receipt = reader.transact(governance, to=registry, data=data)
        if receipt.status != 1:
            raise KeyRegistrationFailed(f"IssuerRegistry refused: 0x{receipt.output.hex()}")

    try:
        reader.call(registry, ISSUER_REGISTRY.encode_call("departmentInfo", department))
    except CallReverted:
        send(ISSUER_REGISTRY.encode_call("registerDepartment", department, department_name))
    (owner, _key_id) = ISSUER_REGISTRY.decode_result(
        "departmentOf",
        reader.call(registry, ISSUER_REGISTRY.encode_call("departmentOf", account_of(public_key))),
    )
    if owner == department:
        return
    if owner != bytes(18):
        raise KeyRegistrationFailed(f"the key belongs to department {owner!r}")
    send(
        ISSUER_REGISTRY.encode_call(
            "addKey", department, bytes(public_key), int(roles), 0, OPEN_ENDED
        )
    )


__all__ = ["KeyRegistrationFailed", "department_key_claims", "register_department_key"]
