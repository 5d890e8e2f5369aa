"""A receipt's JSON of the wrong shape is refused by :meth:`AccessReceipt.from_json` with
ReceiptInvalid, before any check could raise something else."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chain.crypto import PrivateKey
from sdk.data_receipts import AccessReceipt, ReceiptInvalid

KEY = PrivateKey.generate().public_key.to_bytes().hex()


def receipt_json(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "entry": {"kind": "access"},
        "recordId": "00000000-0000-4000-8000-000000000000",
        "registryKey": KEY,
        "metadataSalt": "00" * 16,
        "registrySignature": base64.b64encode(b"\x30\x06").decode(),
        "chainId": 1,
    }
    value.update(changes)
    return value


def test_a_receipt_of_the_right_shape_parses() -> None:
    assert AccessReceipt.from_json(receipt_json()).metadata_salt == bytes(16)


@pytest.mark.parametrize("salt", ["", "00", "00" * 15, "00" * 17, "00" * 32])
def test_a_metadata_salt_of_another_length_is_refused(salt: str) -> None:
    """Once parsed, it raised ValueError out of verify_receipt (from the commitment)."""
    with pytest.raises(ReceiptInvalid):
        AccessReceipt.from_json(receipt_json(metadataSalt=salt))
