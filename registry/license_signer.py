"""Who signed a license and its status changes, checked on chain (a part of
:class:`registry.license_service.LicenseService`, held by it as ``signers``): the stored
signature of the issuing department over the license's commitment — the commitment
recomputed from the stored terms, not taken from the row — verified against the
department's key record in IssuerRegistry at the issuing block, the same check an offline
verifier makes of the bundle (:func:`sdk.license_status_bundle.check_signed_commitment`).
The citizen's verify page and a license read show this verdict, never the issuer name the
registry stored; the page also names who suspended, revoked or expired the license, its
signature checked the same way at the change's block."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts.trust import AbiCodecError, license_id_hash
from registry.caches import TtlCache
from registry.chain_gateway import ContractsNotDeployed
from registry.department_keys import department_key_claims
from registry.license_schemas import LicenseSignerPublic
from registry.models import License, LicenseOperation
from sdk.bundle_links import BundleFormatError, DepartmentClaim
from sdk.chain_reader import CallReverted, ChainUnavailable, RpcCallFailed
from sdk.license_signing import NO_PREDECESSOR, license_commitment
from sdk.license_status_bundle import DepartmentSignatureInvalid, check_signed_commitment
from sdk.license_status_signing import StatusAction, license_status_commitment
from sdk.trust_types import Verdict

if TYPE_CHECKING:
    from registry.license_service import LicenseService

SIGNER_CACHE_TTL_S = 600.0
"""How long a verdict is reused. It is a fact about a past block, so it cannot go stale;
the key holds every stored term, so a changed row is checked afresh."""


_REFUSED = (DepartmentSignatureInvalid, BundleFormatError, KeyError, TypeError, ValueError)
"""What a signature or key record that does not check out raises."""


@dataclass(frozen=True)
class SignerVerdict:
    """The verdict on a license's department signature."""

    verdict: Verdict
    """VALID: it verifies with a key the department held at the issuing block; INVALID:
    it does not, or there is none; UNAVAILABLE: the chain could not be read."""
    uscc: str | None
    """The signing department (VALID only)."""
    name: str | None
    """Its name in IssuerRegistry at that block (VALID only)."""
    detail: str
    """Why, in a few words."""
    signed: bool = True
    """False for a license issued before departments signed (it carries no signature)."""

    def public(self) -> LicenseSignerPublic:
        """As the license read shows it."""
        return LicenseSignerPublic(
            verdict=self.verdict, uscc=self.uscc, name=self.name, detail=self.detail
        )


def _unsigned() -> SignerVerdict:
    return SignerVerdict(
        Verdict.INVALID,
        None,
        None,
        "issued before departments signed: the license carries no department signature",
        signed=False,
    )


class LicenseSigners:
    """The department signature verdicts of one license service's licenses."""

    def __init__(self, service: LicenseService) -> None:
        """Check the licenses of ``service``."""
        self.gateway = service.gateway
        self._cache: TtlCache[tuple[object, ...], SignerVerdict] = TtlCache(SIGNER_CACHE_TTL_S)

    def verdict(self, row: License) -> SignerVerdict:
        """Who signed the license ``row``, checked on chain at its issuing block."""
        if row.department_signature is None or row.department_key is None:
            return _unsigned()
        if row.block_number is None:
            return SignerVerdict(Verdict.UNAVAILABLE, None, None, "not on chain yet")
        department_key, signature = row.department_key, row.department_signature

        def commitment() -> bytes:
            predecessor = (
                NO_PREDECESSOR if row.predecessor is None else license_id_hash(row.predecessor)
            )
            return license_commitment(
                bytes.fromhex(department_key),
                bytes.fromhex(row.id_hash),
                bytes.fromhex(row.holder_commitment),
                bytes.fromhex(row.metadata_hash),
                row.valid_until,
                predecessor,
            )

        key = (
            "issue",
            row.identifier,
            row.id_hash,
            row.department,
            department_key,
            signature,
            row.holder_commitment,
            row.metadata_hash,
            row.valid_until,
            row.predecessor,
            row.block_number,
        )
        return self._cached(key, department_key, signature, commitment, row.block_number, row)

    def change_verdict(self, row: License, operation: LicenseOperation) -> SignerVerdict:
        """Who signed the status change ``operation`` of the license ``row``, checked on
        chain at the change's block."""
        department_key, signature = operation.department_key, operation.department_signature
        if department_key is None or signature is None or operation.sequence is None:
            return _unsigned()
        if operation.block_number is None:
            return SignerVerdict(Verdict.UNAVAILABLE, None, None, "not on chain yet")
        sequence = operation.sequence

        def commitment() -> bytes:
            return license_status_commitment(
                bytes.fromhex(department_key),
                self.gateway.chain_id(),
                bytes.fromhex(row.id_hash),
                StatusAction.named(operation.action),
                operation.reason,
                sequence,
            )

        key = (
            "status",
            row.identifier,
            row.id_hash,
            row.department,
            department_key,
            signature,
            operation.action,
            operation.reason,
            sequence,
            operation.block_number,
        )
        return self._cached(key, department_key, signature, commitment, operation.block_number, row)

    def _cached(
        self,
        key: tuple[object, ...],
        department_key: str,
        signature: str,
        commitment: Callable[[], bytes],
        height: int,
        row: License,
    ) -> SignerVerdict:
        try:
            return self._cache.get_or_load(
                key,
                lambda: self._check(department_key, signature, commitment, height, row.department),
            )
        except (
            ChainUnavailable,
            RpcCallFailed,
            CallReverted,
            ContractsNotDeployed,
            AbiCodecError,
        ) as exc:
            return SignerVerdict(
                Verdict.UNAVAILABLE, None, None, f"the chain cannot be read: {exc}"
            )

    def _check(
        self,
        key_hex: str,
        signature_hex: str,
        commitment: Callable[[], bytes],
        height: int,
        department: str,
    ) -> SignerVerdict:
        """The verdict on ``signature_hex`` by ``key_hex`` over ``commitment()`` for
        ``department``, against the key's IssuerRegistry record at block ``height``."""
        try:
            department_key = bytes.fromhex(key_hex)
            signed = commitment()
        except ValueError as exc:
            return SignerVerdict(Verdict.INVALID, None, None, f"malformed signature: {exc}")
        claims = department_key_claims(self.gateway, [department_key.hex()], height)
        found = claims[department_key.hex()]
        try:
            claim = DepartmentClaim.from_json(
                {"signature": "0x" + signature_hex, "name": found["name"], "key": found["key"]}
            )
            signed_by = check_signed_commitment(
                claim,
                department_key,
                signed,
                chain_id=self.gateway.chain_id(),
                height=height,
                issuer_registry=bytes(self.gateway.contracts().issuer_registry),
            )
        except _REFUSED as exc:
            return SignerVerdict(Verdict.INVALID, None, None, str(exc))
        if signed_by.uscc != department:
            return SignerVerdict(
                Verdict.INVALID,
                None,
                None,
                f"signed by {signed_by.uscc}, not by the issuing department {department}",
            )
        return SignerVerdict(
            Verdict.VALID,
            signed_by.uscc,
            signed_by.name,
            f"signed by {signed_by.name} ({signed_by.uscc}), key {signed_by.key_id}, "
            f"valid at block {height}",
        )


__all__ = ["SIGNER_CACHE_TTL_S", "LicenseSigners", "SignerVerdict"]
