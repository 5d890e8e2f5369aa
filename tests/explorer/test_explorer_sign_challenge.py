"""``lianxin explorer sign-challenge KEYSTORE < challenge``, the command the login page tells
an auditor to run: it signs the challenge text with the keystore's SM2 key (its password from
the chain directory) and prints the public key and the signature, which verify."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from chain.crypto import PrivateKey, PublicKey
from explorer.__main__ import main
from node.chain_dir import save_key

CHALLENGE = "lianxin explorer login\nchain 20261126\nnonce 5f1c\nexpires 2026-12-06T10:00:00Z"


def test_the_command_the_login_page_names_signs_the_challenge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = PrivateKey.generate()
    (tmp_path / "keystore-password").write_bytes(b"auditor password\n")
    save_key(tmp_path / "auditor.json", key, b"auditor password", iterations=1_000)
    monkeypatch.setattr("sys.stdin", io.StringIO(CHALLENGE + "\n"))
    assert main(["sign-challenge", str(tmp_path / "auditor.json"), "--dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    public_hex = re.search(r"public key:\s*([0-9a-f]+)", printed)
    signature_hex = re.search(r"signature:\s*([0-9a-f]+)", printed)
    assert public_hex and signature_hex, printed
    public = PublicKey.from_bytes(bytes.fromhex(public_hex[1]))
    assert public.to_bytes() == key.public_key.to_bytes()
    public.verify(bytes.fromhex(signature_hex[1]), CHALLENGE.encode())


def test_without_a_keystore_it_says_how_to_use_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sign-challenge"]) == 2
    assert "usage: lianxin explorer sign-challenge KEYSTORE" in capsys.readouterr().err
