"""A department's side of changing a license's status (suspend, resume, revoke, expire):
the status change's commitment (:func:`license_status_commitment`) binds the license, the
action, the reason code, the position the change takes in the license's on-chain history
and the chain id under its own domain prefix, and the department signs it with its own SM2
key over the same sign-bytes as a license or record commitment
(:func:`sdk.bundle_links.department_sign_bytes`). The registry recomputes the commitment
from the request and checks the signature; the license's bundle carries it, so that an
offline verifier sees which department suspended or revoked the license, not only which
key sent the transaction.

The history position makes each signature good for one change only: a signed suspension
cannot be replayed after the license is resumed, since the next suspension takes another
position.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass
from typing import Any

from chain.crypto import PrivateKey, sm3
from chain.primitives import Hash32
from contracts.trust import license_id_hash
from sdk.bundle_links import department_sign_bytes
from sdk.commitments import DEPARTMENT_KEY_SIZE

LICENSE_STATUS_COMMITMENT_PREFIX = b"lianxin/license-status/v1\x00"
"""Domain separation of status change commitments (a license's issuance and a record have
prefixes of their own, so a signature over one never stands for another)."""


class StatusAction(enum.IntEnum):
    """A status change a department signs, with its code in the commitment. The names are
    LicenseRegistry's functions (and the registry's routes)."""

    SUSPEND = 1
    """Suspend a license in force."""
    RESUME = 2
    """Put a suspended license back in force."""
    REVOKE = 3
    """Revoke a license for good."""
    EXPIRE = 4
    """Record that a license is expired."""

    @classmethod
    def named(cls, action: str) -> StatusAction:
        """The action called ``action`` (``suspend``, …); raises ValueError otherwise."""
        try:
            return cls[action.upper()]
        except KeyError:
            raise ValueError(f"unknown license status change {action!r}") from None

    @property
    def function(self) -> str:
        """The LicenseRegistry function (and route) of this action."""
        return self.name.lower()


def license_status_commitment(
    department_key: bytes,
    chain_id: int,
    id_hash: bytes,
    action: StatusAction,
    reason: int,
    sequence: int,
) -> Hash32:
    """What a department signs for a status change: SM3 of the prefix, its public key (65
    bytes), the chain id (8 bytes, big-endian), the license's identifier hash (32 bytes),
    the action code (1 byte), the reason code (2 bytes, big-endian) and ``sequence``, the
    position the change takes in the license's on-chain history (8 bytes, big-endian; the
    issuance is position 0). Fixed widths, so any tool can compute it."""
    if len(department_key) != DEPARTMENT_KEY_SIZE:
        raise ValueError(f"a department key is {DEPARTMENT_KEY_SIZE} bytes")
    if len(id_hash) != 32:
        raise ValueError("an identifier hash is 32 bytes")
    if not 0 <= chain_id < 2**64:
        raise ValueError("chain id out of range")
    if not 0 <= reason < 2**16:
        raise ValueError("a reason code is 0 to 65535")
    if not 1 <= sequence < 2**64:
        raise ValueError("a status change takes history position 1 or later")
    return sm3(
        LICENSE_STATUS_COMMITMENT_PREFIX
        + bytes(department_key)
        + chain_id.to_bytes(8, "big")
        + bytes(id_hash)
        + StatusAction(action).to_bytes(1, "big")
        + reason.to_bytes(2, "big")
        + sequence.to_bytes(8, "big")
    )


@dataclass(frozen=True)
class SignedStatusChange:
    """A status change ready to send: the request body and what it signed."""

    body: dict[str, Any]
    """The JSON object of ``POST /v1/licenses/{id}/{action}``."""
    commitment: Hash32
    """The commitment it signed."""


def sign_status_change(
    key: PrivateKey,
    chain_id: int,
    identifier: str,
    action: StatusAction,
    reason: int,
    sequence: int,
) -> SignedStatusChange:
    """Sign the change ``action`` of license ``identifier`` with ``reason``, taking
    history position ``sequence`` (the number of entries its on-chain history has now),
    for the chain ``chain_id``. Raises ValueError for a term out of range."""
    commitment = license_status_commitment(
        key.public_key.to_bytes(),
        chain_id,
        license_id_hash(identifier),
        action,
        reason,
        sequence,
    )
    signature = key.sign(department_sign_bytes(chain_id, commitment))
    body = {
        "reason": int(reason),
        "sequence": int(sequence),
        "department_signature": base64.b64encode(signature).decode("ascii"),
    }
    return SignedStatusChange(body=body, commitment=commitment)


__all__ = [
    "LICENSE_STATUS_COMMITMENT_PREFIX",
    "SignedStatusChange",
    "StatusAction",
    "license_status_commitment",
    "sign_status_change",
]
