"""Which OpenSSL calls of the native SM2 backend let the GIL go.

A thread that lets the GIL go has to take it back, and while another thread runs Python it
waits for the holder to hand it over (up to the switch interval, 5 ms). Only the elliptic-
curve work itself (signing and verifying, about 0.3 ms each) is worth that: every other call
takes microseconds and is made with the GIL held, so a signature check beside a busy thread
waits at one hand-over, not at four."""

from __future__ import annotations

import ctypes
import threading

import pytest

from chain.crypto import PrivateKey
from chain.crypto.native import NativeBackend, NativeUnavailable
from chain.errors import InvalidSignature

RELEASING = {"EVP_PKEY_sign", "EVP_PKEY_verify"}


@pytest.fixture(scope="module")
def backend() -> NativeBackend:
    try:
        return NativeBackend()
    except NativeUnavailable as error:
        pytest.skip(f"no native backend here: {error}")


def _bound(backend: NativeBackend) -> dict[str, object]:
    lib = backend._lib
    return {
        name: value
        for name, value in vars(lib).items()
        if isinstance(value, ctypes._CFuncPtr)  # type: ignore[attr-defined]
    }


def test_only_signing_and_verifying_let_the_gil_go(backend: NativeBackend) -> None:
    bound = _bound(backend)
    assert bound.keys() >= RELEASING
    assert len(bound) > len(RELEASING)
    for name, function in bound.items():
        holds = bool(function._flags_ & ctypes._FUNCFLAG_PYTHONAPI)  # type: ignore[attr-defined]
        assert holds == (name not in RELEASING), name


def test_checks_from_many_threads_beside_a_busy_one_all_answer(backend: NativeBackend) -> None:
    key = PrivateKey.generate(backend=backend)
    message = b"many threads, one GIL"
    signature = key.sign(message)
    public = key.public_key
    stop = threading.Event()
    failures: list[BaseException] = []

    def busy() -> None:
        count = 0
        while not stop.is_set():
            count += 1

    def check() -> None:
        try:
            for _ in range(20):
                public.verify(signature, message)
                bad = bytearray(message)
                bad[0] ^= 1
                try:
                    public.verify(signature, bytes(bad))
                except InvalidSignature:
                    continue
                raise AssertionError("a changed message verified")
        except BaseException as error:
            failures.append(error)

    spinner = threading.Thread(target=busy)
    spinner.start()
    checkers = [threading.Thread(target=check) for _ in range(4)]
    for thread in checkers:
        thread.start()
    for thread in checkers:
        thread.join()
    stop.set()
    spinner.join()
    assert failures == []
