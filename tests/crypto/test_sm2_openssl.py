"""Interoperability with the ``openssl`` 3 command line: keys, signatures both ways, signer
IDs, SEC1 keys, SM4-CBC."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from chain.crypto import DEFAULT_SIGNER_ID, PrivateKey, PublicKey, sm4

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed"),
]

MESSAGE = b"lianxin interop \xe9\x93\xbe\xe4\xbf\xa1 message"
OTHER_SIGNER_ID = b"district-registry@example.gov.cn"


def _openssl(*args: str | Path, data: bytes | None = None) -> bytes:
    completed = subprocess.run(
        ["openssl", *map(str, args)], input=data, capture_output=True, check=False
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return completed.stdout


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_our_private_key_loads_in_openssl(tmp_path: Path) -> None:
    private_key = PrivateKey.generate()
    key_file = _write(tmp_path / "key.pem", private_key.to_pem())
    text = _openssl("pkey", "-in", key_file, "-noout", "-text").decode()
    assert "SM2" in text
    assert _openssl("pkey", "-in", key_file, "-pubout") == private_key.public_key.to_pem()


def test_openssl_keys_load_in_ours(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    _openssl("genpkey", "-algorithm", "SM2", "-out", key_file)
    private_key = PrivateKey.from_pem(key_file.read_bytes())
    public_pem = _openssl("pkey", "-in", key_file, "-pubout")
    assert PublicKey.from_pem(public_pem) == private_key.public_key
    sec1 = _openssl("ec", "-in", key_file)
    assert PrivateKey.from_pem(sec1).to_bytes() == private_key.to_bytes()


@pytest.mark.parametrize("signer_id", [DEFAULT_SIGNER_ID, OTHER_SIGNER_ID])
def test_our_signature_verifies_in_openssl(tmp_path: Path, signer_id: bytes) -> None:
    private_key = PrivateKey.generate()
    public_file = _write(tmp_path / "pub.pem", private_key.public_key.to_pem())
    message_file = _write(tmp_path / "message", MESSAGE)
    signature_file = _write(tmp_path / "signature", private_key.sign(MESSAGE, signer_id))
    output = _openssl(
        "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin", "-inkey", public_file,
        "-in", message_file, "-sigfile", signature_file,
        "-pkeyopt", f"distid:{signer_id.decode()}",
    )  # fmt: skip
    assert b"Signature Verified Successfully" in output


@pytest.mark.parametrize("signer_id", [DEFAULT_SIGNER_ID, OTHER_SIGNER_ID])
def test_openssl_signature_verifies_in_ours(tmp_path: Path, signer_id: bytes) -> None:
    private_key = PrivateKey.generate()
    key_file = _write(tmp_path / "key.pem", private_key.to_pem())
    message_file = _write(tmp_path / "message", MESSAGE)
    signature = _openssl(
        "dgst", "-sm3", "-sign", key_file, "-sigopt", f"distid:{signer_id.decode()}",
        message_file,
    )  # fmt: skip
    private_key.public_key.verify(signature, MESSAGE, signer_id)


def test_our_sm4_cbc_matches_openssl() -> None:
    key = bytes(range(16))
    iv = bytes(range(16, 32))
    plaintext = MESSAGE * 3
    ciphertext = _openssl("enc", "-sm4-cbc", "-K", key.hex(), "-iv", iv.hex(), data=plaintext)
    assert sm4.cbc_encrypt(key, iv, plaintext) == ciphertext
    assert sm4.cbc_decrypt(key, iv, ciphertext) == plaintext
