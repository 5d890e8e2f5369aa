"""The cryptography of an encrypted, authenticated byte channel between two nodes.

Three pieces, each a recipe over primitives that OpenSSL provides:

- **Ephemeral key agreement**: a fresh key pair on the SM2 curve per connection
  (:func:`ephemeral_key`), and ECDH: the shared secret is the x-coordinate of
  ``own scalar × peer point`` (GB/T 32918.3 uses the same curve arithmetic). Fresh keys on
  both sides give forward secrecy: a node key stolen later decrypts no recorded traffic.
- **Key derivation**: HKDF (RFC 5869) with HMAC-SM3 (:func:`hkdf_sm3`), salted with the hash
  of the handshake transcript, so keys are bound to both ephemeral keys, both node keys and
  the chain id. :func:`derive_session_keys` splits the output into one cipher key and one MAC
  key per direction.
- **Frame protection**: SM4-CTR then HMAC-SM3 over the ciphertext (encrypt-then-MAC,
  :class:`FrameSealer` / :class:`FrameOpener`). Each direction has its own keys, used for
  that one connection only. Its frames are encrypted with one continuous SM4-CTR key stream
  (initial counter block zero), so no key-stream byte is ever used twice; and each frame's
  MAC covers a frame counter that starts at 0 and grows by one per frame. The counter is
  never sent, so a replayed, dropped, reordered or injected frame fails the MAC at the
  receiver, which then drops the connection (the streams cannot be resynchronised).

The implementations come from OpenSSL (:mod:`chain.crypto.native`). The pure-Python ones below
(:class:`PureEphemeralKey`, :class:`PureSm4Ctr`) are test oracles only: they are not
constant-time and the pure SM4 is far too slow for a link, so without OpenSSL the channel
refuses to start (NativeUnavailable) rather than falling back to them quietly.
"""

from __future__ import annotations

import hmac
import secrets
import struct
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from chain.crypto import curve, sm4
from chain.crypto.native import NativeChannelCrypto, NativeUnavailable
from chain.errors import CryptoError

KEY_SIZE = 16
"""SM4 key size in bytes."""
MAC_KEY_SIZE = 32
"""HMAC-SM3 key size in bytes (one SM3 output)."""
TAG_SIZE = 32
"""HMAC-SM3 tag size in bytes (untruncated)."""
SESSION_KEYS_INFO = b"lianxin/p2p-session-keys/v1"
"""HKDF ``info`` of the session keys (domain separation)."""
MAX_FRAMES_PER_DIRECTION = 1 << 63
"""A direction is closed before its frame counter could wrap."""

_SM3_SIZE = 32
_COUNTER = struct.Struct(">Q")


class FrameAuthError(CryptoError):
    """A sealed frame whose MAC does not verify: altered, injected, replayed or reordered."""


class EphemeralKey(Protocol):
    """A key pair used for one key agreement."""

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed public point."""
        ...

    def agree(self, peer_public_key: bytes) -> bytes:
        """The 32-byte shared x-coordinate; raises InvalidKey for a point off the curve."""
        ...


class Sm4Ctr(Protocol):
    """One continuous SM4-CTR key stream."""

    def apply(self, data: bytes) -> bytes:
        """``data`` XOR the next ``len(data)`` bytes of the key stream."""
        ...


class PureEphemeralKey:
    """An ephemeral key pair in pure Python (not constant-time: fallback and test oracle)."""

    def __init__(self, scalar: int | None = None) -> None:
        self._scalar = scalar if scalar is not None else 1 + secrets.randbelow(curve.N - 2)
        point = curve.to_affine(curve.multiply_base(self._scalar))
        assert point is not None
        self._public_key = curve.encode_point(point)

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed public point."""
        return self._public_key

    def agree(self, peer_public_key: bytes) -> bytes:
        """The x-coordinate of ``scalar × peer point``; raises InvalidKey off the curve."""
        shared = curve.to_affine(curve.multiply(self._scalar, curve.decode_point(peer_public_key)))
        if shared is None:
            raise CryptoError("key agreement reached the point at infinity")
        return shared[0].to_bytes(curve.FIELD_SIZE, "big")


class PureSm4Ctr:
    """SM4-CTR in pure Python with a 128-bit big-endian counter, as OpenSSL's ``SM4-CTR``:
    one continuous key stream from ``counter_block``."""

    def __init__(self, key: bytes, counter_block: bytes) -> None:
        if len(key) != KEY_SIZE or len(counter_block) != sm4.BLOCK_SIZE:
            raise CryptoError("SM4-CTR needs a 16-byte key and a 16-byte counter block")
        self._key = key
        self._counter = int.from_bytes(counter_block, "big")
        self._buffered = b""

    def apply(self, data: bytes) -> bytes:
        """``data`` XOR the next ``len(data)`` bytes of the key stream."""
        stream = bytearray(self._buffered)
        while len(stream) < len(data):
            block = self._counter.to_bytes(sm4.BLOCK_SIZE, "big")
            stream += sm4.encrypt_block(self._key, block)
            self._counter = (self._counter + 1) % (1 << 128)
        self._buffered = bytes(stream[len(data) :])
        return bytes(a ^ b for a, b in zip(data, stream, strict=False))


@cache
def _native() -> NativeChannelCrypto | None:
    try:
        return NativeChannelCrypto()
    except NativeUnavailable:
        return None


def native_available() -> bool:
    """Whether OpenSSL provides the key agreement and SM4-CTR here."""
    return _native() is not None


def _require_native() -> NativeChannelCrypto:
    native = _native()
    if native is None:
        raise NativeUnavailable(
            "the p2p channel needs OpenSSL 3 with SM2-curve ECDH and SM4-CTR (libcrypto)"
        )
    return native


def ephemeral_key() -> EphemeralKey:
    """A fresh key pair on the SM2 curve from OpenSSL; raises NativeUnavailable without it."""
    return _require_native().ephemeral_key()


def sm4_ctr(key: bytes, counter_block: bytes = bytes(16)) -> Sm4Ctr:
    """An SM4-CTR key stream under ``key`` from ``counter_block``, from OpenSSL; raises
    NativeUnavailable without it."""
    return _require_native().sm4_ctr(key, counter_block)


def hkdf_sm3(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF (RFC 5869) with HMAC-SM3: extract with ``salt``, expand with ``info`` to
    ``length`` bytes (at most 255 × 32)."""
    if not 0 < length <= 255 * _SM3_SIZE:
        raise CryptoError("HKDF-SM3 output length out of range")
    prk = hmac.digest(salt or bytes(_SM3_SIZE), ikm, "sm3")
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sm3")
        output += block
        counter += 1
    return output[:length]


@dataclass(frozen=True)
class DirectionKeys:
    """The keys of one direction of a channel."""

    cipher_key: bytes
    """SM4 key of the frames sent this way."""
    mac_key: bytes
    """HMAC-SM3 key of the frames sent this way."""


@dataclass(frozen=True)
class SessionKeys:
    """The keys of both directions, named by who sends."""

    initiator_to_responder: DirectionKeys
    """Frames the dialling side sends."""
    responder_to_initiator: DirectionKeys
    """Frames the accepting side sends."""


def derive_session_keys(shared_secret: bytes, transcript_hash: bytes) -> SessionKeys:
    """Split HKDF-SM3(shared secret, salt = transcript hash) into per-direction keys."""
    size = KEY_SIZE + MAC_KEY_SIZE
    material = hkdf_sm3(
        shared_secret, salt=transcript_hash, info=SESSION_KEYS_INFO, length=2 * size
    )

    def direction(offset: int) -> DirectionKeys:
        return DirectionKeys(
            material[offset : offset + KEY_SIZE], material[offset + KEY_SIZE : offset + size]
        )

    return SessionKeys(direction(0), direction(size))


class _FrameKeys:
    def __init__(self, keys: DirectionKeys) -> None:
        self._cipher = sm4_ctr(keys.cipher_key)
        self._mac = hmac.new(keys.mac_key, digestmod="sm3")
        self.counter = 0

    def _next(self) -> bytes:
        if self.counter >= MAX_FRAMES_PER_DIRECTION:
            raise CryptoError("frame counter exhausted: reconnect")
        counter = _COUNTER.pack(self.counter)
        self.counter += 1
        return counter

    def _tag(self, counter: bytes, header: bytes, ciphertext: bytes) -> bytes:
        mac = self._mac.copy()  # the keyed state, prepared once
        mac.update(counter + header)
        mac.update(ciphertext)
        return mac.digest()


class FrameSealer(_FrameKeys):
    """Seals the frames of one direction, in order."""

    def seal(self, header: bytes, plaintext: bytes) -> bytes:
        """Return ``SM4-CTR(plaintext) || HMAC-SM3(counter || header || ciphertext)`` for
        the next frame; ``header`` (the frame's length prefix) is authenticated, not
        encrypted."""
        counter = self._next()
        ciphertext = self._cipher.apply(plaintext)
        return ciphertext + self._tag(counter, header, ciphertext)


class FrameOpener(_FrameKeys):
    """Opens the frames of one direction, in order. After a FrameAuthError the opener is
    out of step with the sender: the connection must be dropped."""

    def open(self, header: bytes, sealed: bytes) -> bytes:
        """Return the plaintext of the next frame; raise FrameAuthError if its MAC does not
        verify for this position in the stream (nothing is decrypted then)."""
        if len(sealed) < TAG_SIZE:
            raise FrameAuthError("sealed frame shorter than its tag")
        counter = self._next()
        ciphertext, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
        if not hmac.compare_digest(tag, self._tag(counter, header, ciphertext)):
            raise FrameAuthError("frame MAC does not verify")
        return self._cipher.apply(ciphertext)
