"""A department's signature over a commitment, as the registry checks it at its boundary:
the client's registered SM2 key, the chain's sign bytes, and one typed refusal."""

from __future__ import annotations

import base64
import binascii

from chain.crypto import PublicKey
from chain.errors import ChainError
from registry.errors import InvalidInput
from registry.models import Client
from sdk.bundle_links import department_sign_bytes


def client_key_bytes(client: Client) -> bytes:
    """The SM2 public key a client's requests (and its department signatures) verify with."""
    return bytes(PublicKey.from_bytes(bytes.fromhex(client.public_key)).to_bytes())


def checked_department_signature(
    key_bytes: bytes, signature_b64: str, commitment: bytes, chain_id: int, what: str
) -> bytes:
    """The decoded ``signature_b64``, checked as the department's (``key_bytes``) signature
    of ``commitment`` (a ``what``) on chain ``chain_id``; raises InvalidInput (422,
    ``bad_department_signature``) naming the commitment the registry computed."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        PublicKey.from_bytes(key_bytes).verify(
            signature, department_sign_bytes(chain_id, commitment)
        )
    except (binascii.Error, ValueError, ChainError):
        raise InvalidInput(
            f"department_signature is not the client's signature of {what} "
            f"{commitment.hex()} on chain {chain_id}",
            code="bad_department_signature",
        ) from None
    return signature
