"""What citizens and holders see of a license: its QR codes, dynamic tokens, the verify
page, and its issuance proof bundle (a part of :class:`registry.license_service.LicenseService`,
held by it as ``pages``)."""

from __future__ import annotations

import base64
import datetime
import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select

from chain.types import Header
from contracts.trust import (
    AbiCodecError,
)
from registry.chain_gateway import ContractsNotDeployed, EvidenceNotReady
from registry.department_keys import department_key_claims
from registry.errors import (
    NotFound,
    ServiceUnavailable,
)
from registry.license_rules import (
    VERIFY_PATH,
    PageLookup,
    _aware,
    _now,
    license_links,
)
from registry.licenses import (
    PageSigner,
    PageStatus,
    TokenError,
    TokenExpired,
    VerifyPageView,
    issue_token,
    page_status,
    static_qr,
    token_url,
    verify_token,
)
from registry.licenses.qr import QrImages
from registry.licenses.stored import PageMetadata
from registry.models import (
    Client,
    License,
    LicenseAction,
    LicenseOperation,
    OperationState,
)
from registry.schemas import (
    TokenPublic,
)
from sdk.chain_reader import ChainUnavailable, RpcCallFailed
from sdk.identifiers import (
    LICENSE_IDENTIFIER_PREFIX,
)
from sdk.license_bundle import (
    LEGACY_LICENSE_BUNDLE_VERSION,
    LICENSE_BUNDLE_KIND,
    LICENSE_BUNDLE_VERSION,
)
from sdk.trust_types import Verdict

if TYPE_CHECKING:
    from registry.license_service import LicenseService


class LicensePages:
    """QR codes, tokens, verify pages and issuance bundles of one license service."""

    def __init__(self, service: LicenseService) -> None:
        """Serve the licenses of ``service``."""
        self.service = service
        self.db = service.db
        self.gateway = service.gateway

    # -- QR codes and tokens -------------------------------------------------------------------

    def qr(self, identifier: str, base_url: str) -> QrImages:
        """The static QR code of a stored license: a link to its verify page."""
        row = self.service.stored(identifier)
        return static_qr(license_links(base_url, row.identifier)["verify"])

    def token(
        self, client: Client, identifier: str, lifetime_seconds: int, base_url: str
    ) -> TokenPublic:
        """A dynamic QR token for a license of the client's department, signed with the
        registry's issuer key, valid ``lifetime_seconds``."""
        row = self.service._owned(client, identifier)
        now = _now()
        expires_at = now + datetime.timedelta(seconds=lifetime_seconds)
        key = self.gateway.signer().private_key
        text = issue_token(
            bytes.fromhex(row.id_hash),
            expires_at,
            key,
            now=now,
            nonce=secrets.token_bytes(8),
        )
        url = token_url(base_url + VERIFY_PATH, text)
        images = static_qr(url)
        return TokenPublic(
            token=text,
            url=url,
            expires_at=expires_at.replace(microsecond=0),
            qr_svg=images.svg,
            qr_png_base64=base64.b64encode(images.png).decode("ascii"),
        )

    # -- the citizen's page --------------------------------------------------------------------

    def page_view(self, key: str) -> tuple[VerifyPageView, PageLookup]:
        """What the verify page shows for ``key`` (an identifier or a dynamic token), and
        how it was looked up."""
        now = _now()
        if key.startswith(LICENSE_IDENTIFIER_PREFIX + "."):
            lookup = PageLookup.IDENTIFIER
            with self.db.read_session() as session:
                row = session.get(License, key)
                if row is not None:
                    session.expunge(row)
            shown: str | None = key if len(key) <= 128 else None
        else:
            lookup = PageLookup.TOKEN
            try:
                claims = verify_token(key, self.gateway.signer().private_key.public_key, now=now)
            except TokenExpired:
                return VerifyPageView(PageStatus.NOT_FOUND, now), PageLookup.EXPIRED_TOKEN
            except (TokenError, ValueError):
                return VerifyPageView(PageStatus.NOT_FOUND, now), PageLookup.BAD_TOKEN
            with self.db.read_session() as session:
                row = session.scalars(
                    select(License).where(License.id_hash == claims.license_id_hash.hex())
                ).one_or_none()
                if row is not None:
                    session.expunge(row)
            shown = None if row is None else row.identifier
        if row is None:
            return VerifyPageView(PageStatus.NOT_FOUND, now, identifier=shown), lookup
        return self._page_for(row, now), lookup

    def _page_for(self, row: License, now: datetime.datetime) -> VerifyPageView:
        try:
            state = self.service.chain_license(row.id_hash)
        except (ChainUnavailable, RpcCallFailed, ContractsNotDeployed, AbiCodecError):
            return VerifyPageView(PageStatus.UNAVAILABLE, now, identifier=row.identifier)
        status = page_status(state.status)
        if status is PageStatus.NOT_FOUND:
            return VerifyPageView(status, now, identifier=row.identifier)
        if row.block_number is None:
            # On chain, but its receipt not applied yet (a write answered 202 and nothing
            # read it since): apply it, for the signature is checked at that block.
            self.service.drive_pending(row.identifier)
            row = self.service.stored(row.identifier)
        signer = self.service.signers.verdict(row)
        if signer.verdict is Verdict.UNAVAILABLE:
            return VerifyPageView(PageStatus.UNAVAILABLE, now, identifier=row.identifier)
        metadata = PageMetadata.from_stored(row.metadata_json)
        if signer.verdict is Verdict.INVALID and signer.signed:
            # Not the department's signature: nothing the registry stored is vouched for,
            # so the page names no issuer and no status but this one.
            return VerifyPageView(
                PageStatus.SIGNATURE_INVALID,
                now,
                license_name=metadata.license_name,
                identifier=row.identifier,
            )
        last = state.history[-1] if state.history else None
        recorded_change = (
            last is not None and len(state.history) > 1 and status is not PageStatus.VALID
        )
        first = state.history[0] if state.history else None
        changed_by, change_failed = None, False
        if recorded_change:
            changed_by, change_failed = self._change_signer(row, len(state.history) - 1)
        return VerifyPageView(
            status=status,
            checked_at=now,
            license_name=metadata.license_name,
            identifier=row.identifier,
            issuer_name=signer.name or metadata.issuer_name,
            issuer_code=signer.uscc or metadata.issuer_code,
            signed_by=(
                None
                if signer.uscc is None or signer.name is None
                else PageSigner(name=signer.name, uscc=signer.uscc)
            ),
            issue_date=metadata.issue_date,
            valid_from=metadata.valid_from,
            valid_until=metadata.valid_until,
            reason=last.reason if recorded_change and last is not None else None,
            status_changed_at=state.changed_at if recorded_change else None,
            anchored_block=None if first is None else first.block_number,
            anchored_at=_aware(row.anchored_at),
            status_changed_by=changed_by,
            status_signature_failed=change_failed,
            successor_url=(
                f"{self._site_path()}{VERIFY_PATH}/{row.successor}"
                if status is PageStatus.CHANGED and row.successor
                else None
            ),
        )

    def _change_signer(self, row: License, sequence: int) -> tuple[PageSigner | None, bool]:
        """Who signed the status change at history position ``sequence`` (checked on chain
        at its block), and whether its signature failed; (None, False) for a change the
        registry holds no signature of, or that cannot be checked now."""
        operation = self.service.status.signed_change_at(row.identifier, sequence)
        if operation is None:
            return None, False
        verdict = self.service.signers.change_verdict(row, operation)
        if verdict.verdict is Verdict.VALID and verdict.name and verdict.uscc:
            return PageSigner(name=verdict.name, uscc=verdict.uscc), False
        return None, verdict.verdict is Verdict.INVALID

    def _site_path(self) -> str:
        """The path prefix of ``public_base_url`` (empty if none): a link on the verify
        page is a path on this site that keeps it."""
        if self.service.public_base_url is None:
            return ""
        return urlsplit(self.service.public_base_url).path.rstrip("/")

    # -- issuance proof bundle -----------------------------------------------------------------

    def issuance_bundle(self, identifier: str) -> dict[str, Any]:
        """The license's issuance proof bundle (sdk.bundle.LicenseBundle JSON): the
        LicenseRegistry transaction that created it, its receipt, inclusion proofs, the
        certified header and the issuer key record. Raises NotFound, or ServiceUnavailable
        (503) while the transaction is not confirmed and certified."""
        self.service.drive_pending(identifier)
        with self.db.session() as session:
            row = session.get(License, identifier)
            if row is None:
                raise NotFound(f"no license {identifier}", code="license_not_found")
            operation = session.scalars(
                select(LicenseOperation).where(
                    LicenseOperation.state == OperationState.CONFIRMED.value,
                    or_(
                        LicenseOperation.new_identifier == identifier,
                        (LicenseOperation.identifier == identifier)
                        & (LicenseOperation.action == LicenseAction.ISSUE.value),
                    ),
                )
            ).one_or_none()
            evidence_json = row.evidence_json
            raw_hex = None if operation is None else operation.raw_tx
            department_key, signature = row.department_key, row.department_signature
            license_claim: dict[str, Any] = {
                "identifier": row.identifier,
                "idHash": "0x" + row.id_hash,
                "holderCommitment": "0x" + row.holder_commitment,
                "metadataHash": "0x" + row.metadata_hash,
                "validUntil": row.valid_until,
                "predecessor": None if row.predecessor is None else row.predecessor,
            }
        if raw_hex is None:
            raise ServiceUnavailable(
                f"license {identifier} is not confirmed on chain yet", code="not_anchored"
            )
        if evidence_json is None:
            try:
                evidence = self.gateway.batch_evidence(bytes.fromhex(raw_hex))
            except (EvidenceNotReady, ChainUnavailable, RpcCallFailed) as exc:
                raise ServiceUnavailable(
                    f"issuance evidence not available yet: {exc}", code="evidence_not_ready"
                ) from None
            anchor = evidence.pop("anchor")
            anchor.pop("notary")
            anchor["licenseRegistry"] = "0x" + self.service._license_registry().hex()
            evidence["anchor"] = anchor
            if department_key is not None:
                # The department's key record as it stood at the issuing block.
                height = Header.decode(bytes.fromhex(evidence["header"][2:])).height
                evidence["departmentKeys"] = department_key_claims(
                    self.gateway, [department_key], height
                )
            evidence_json = json.dumps(evidence, sort_keys=True)
            with self.db.session() as session:
                session.get_one(License, identifier).evidence_json = evidence_json
        value: dict[str, Any] = json.loads(evidence_json)
        department_keys = value.pop("departmentKeys", None) or {}
        value.update(kind=LICENSE_BUNDLE_KIND, license=license_claim)
        if department_key is None:
            value.update(version=LEGACY_LICENSE_BUNDLE_VERSION)
            return value
        claim = department_keys.get(department_key, {"name": "", "key": None})
        license_claim["departmentKey"] = "0x" + department_key
        value.update(
            version=LICENSE_BUNDLE_VERSION,
            statusChanges=self.service.status.bundle_entries(identifier),
            department={
                "signature": "0x" + (signature or ""),
                "name": claim["name"],
                "key": claim["key"],
            },
        )
        return value
