"""The SM2 backend is chosen once and logged; where the native backend cannot load, the
pure-Python backend verifies but refuses to sign unless explicitly allowed.

A missing ``libcrypto`` is simulated by handing :func:`choose_backend` a native loader that
fails the way :class:`NativeBackend` fails when the library is not found."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chain.crypto import PrivateKey, PublicKey
from chain.crypto.backend import (
    ALLOW_PURE_SIGNING_ENV,
    Backend,
    PureSigningRefused,
    choose_backend,
    default_choice,
    log_backend_choice,
    native_backend,
    pure_signing_allowed,
)
from chain.crypto.keystore import MIN_ITERATIONS, decrypt_keystore, encrypt_keystore
from chain.crypto.native import NativeUnavailable
from chain.errors import InvalidSignature

SCALAR = (0x1234_5678_9ABC_DEF0 * 0x1111).to_bytes(32, "big")
MESSAGE = b"lianxin backend choice"


def libcrypto_not_found() -> Backend:
    raise NativeUnavailable("libcrypto not found")


def logged(caplog: pytest.LogCaptureFixture, choice_logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == choice_logger]


def test_native_backend_is_chosen_and_logged_here(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    choice = choose_backend(allow_pure_signing=False)
    assert choice.backend.name == "native" and choice.signs
    log_backend_choice(logging.getLogger("test.node"), choice)
    (record,) = logged(caplog, "test.node")
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "SM2 backend: native (system OpenSSL libcrypto) signs and verifies"
    )


def test_this_process_uses_the_native_backend() -> None:
    assert default_choice().backend is native_backend()
    assert default_choice() is default_choice()


def test_pure_backend_refuses_to_sign_by_default(caplog: pytest.LogCaptureFixture) -> None:
    choice = choose_backend(allow_pure_signing=False, load_native=libcrypto_not_found)
    assert choice.backend.name == "pure" and not choice.signs
    log_backend_choice(logging.getLogger("test.node"), choice)
    (record,) = logged(caplog, "test.node")
    assert record.levelno == logging.WARNING
    assert "signing is refused" in record.getMessage()
    assert "libcrypto not found" in record.getMessage()
    with pytest.raises(PureSigningRefused) as refused:
        PrivateKey.from_bytes(SCALAR, backend=choice.backend)
    assert "not constant-time" in str(refused.value)
    assert "libcrypto not found" in str(refused.value)
    assert f"{ALLOW_PURE_SIGNING_ENV}=1" in str(refused.value)
    with pytest.raises(PureSigningRefused):
        PrivateKey.generate(backend=choice.backend)


def test_keystore_says_why_it_cannot_load_a_key_into_the_refusing_backend() -> None:
    refusing = choose_backend(allow_pure_signing=False, load_native=libcrypto_not_found)
    key = PrivateKey.from_bytes(SCALAR, backend=native_backend())
    document = encrypt_keystore(key, b"password", iterations=MIN_ITERATIONS)
    with pytest.raises(PureSigningRefused):
        decrypt_keystore(document, b"password", backend=refusing.backend)
    assert decrypt_keystore(document, b"password").to_bytes() == SCALAR


def test_pure_backend_signs_with_the_opt_in(caplog: pytest.LogCaptureFixture) -> None:
    choice = choose_backend(allow_pure_signing=True, load_native=libcrypto_not_found)
    assert choice.backend.name == "pure" and choice.signs
    log_backend_choice(logging.getLogger("test.node"), choice)
    (record,) = logged(caplog, "test.node")
    assert record.levelno == logging.WARNING
    assert "NOT constant-time" in record.getMessage()
    key = PrivateKey.from_bytes(SCALAR, backend=choice.backend)
    signature = key.sign(MESSAGE)
    public_key = PublicKey.from_bytes(key.public_key.to_bytes(), backend=native_backend())
    public_key.verify(signature, MESSAGE)


def test_pure_backend_still_verifies_without_the_opt_in() -> None:
    choice = choose_backend(allow_pure_signing=False, load_native=libcrypto_not_found)
    key = PrivateKey.from_bytes(SCALAR, backend=native_backend())
    signature = key.sign(MESSAGE)
    public_key = PublicKey.from_bytes(key.public_key.to_bytes(), backend=choice.backend)
    public_key.verify(signature, MESSAGE)
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, MESSAGE + b"!")


@pytest.mark.parametrize(
    ("value", "allowed"),
    [(None, False), ("", False), ("0", False), ("no", False), ("1", True), ("true", True)],
)
def test_opt_in_is_read_from_the_environment(value: str | None, allowed: bool) -> None:
    environ = {} if value is None else {ALLOW_PURE_SIGNING_ENV: value}
    assert pure_signing_allowed(environ) is allowed


def test_fixed_nonce_signing_is_not_public() -> None:
    key = PrivateKey.from_bytes(SCALAR, backend=choose_backend(
        allow_pure_signing=True, load_native=libcrypto_not_found
    ).backend)  # fmt: skip
    signing_key = key._signing_key
    assert not hasattr(signing_key, "sign_digest_with_nonce")
    assert not [name for name in dir(signing_key) if "nonce" in name and not name.startswith("_")]


def test_nothing_outside_chain_crypto_signs_with_a_chosen_nonce() -> None:
    root = Path(__file__).resolve().parents[2]
    callers = [
        str(path.relative_to(root))
        for package in ("chain", "contracts", "node", "sdk", "registry", "credit", "archives")
        for path in (root / package).rglob("*.py")
        if "with_nonce" in path.read_text(encoding="utf-8")
        and path.parent != root / "chain" / "crypto"
    ]
    assert callers == []
