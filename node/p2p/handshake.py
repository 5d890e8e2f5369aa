"""The p2p handshake: both nodes prove they hold the key the other expects, on this chain.

Each side first sends a HELLO frame, RLP ``[version, chain id, node public key, nonce]`` with a
fresh 32-byte nonce from the CSPRNG, and checks the other's: same version and chain id, a key
listed in its peer configuration. Then each side sends an AUTH frame holding its SM2
signature over the transcript::

    "lianxin/p2p-handshake/v1\\0" || RLP([chain id, initiator key, initiator nonce,
                                         responder key, responder nonce, signer role])

The transcript binds both keys, both nonces (so a signature cannot be replayed on another
connection) and the chain id; the signer role (1 initiator, 2 responder) keeps one side's
signature from being reflected back as the other's.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from chain import encoding as enc
from chain.crypto import PrivateKey, PublicKey
from chain.errors import CryptoError, EncodingError

from .frames import FrameError, FrameKind, OversizeFrame, encode_frame, read_frame

HANDSHAKE_SIGN_PREFIX = b"lianxin/p2p-handshake/v1\x00"
"""Domain separation of handshake signatures."""

PROTOCOL_VERSION = 1
NONCE_SIZE = 32
INITIATOR = 1
RESPONDER = 2


class HandshakeError(Exception):
    """A connection that failed to authenticate; ``reason`` is the counter it feeds."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Hello:
    """The first handshake frame."""

    version: int
    chain_id: int
    public_key: bytes
    nonce: bytes

    def encode(self) -> bytes:
        return enc.encode(
            [
                enc.encode_int(self.version),
                enc.encode_int(self.chain_id),
                self.public_key,
                self.nonce,
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Hello:
        version, chain_id, public_key, nonce = enc.as_list(enc.decode(data), "Hello", 4)
        return cls(
            version=enc.decode_int(version, "Hello.version"),
            chain_id=enc.decode_int(chain_id, "Hello.chain_id"),
            public_key=enc.as_bytes(public_key, "Hello.public_key", 65),
            nonce=enc.as_bytes(nonce, "Hello.nonce", NONCE_SIZE),
        )


def handshake_sign_bytes(
    chain_id: int,
    initiator: Hello,
    responder: Hello,
    signer_role: int,
) -> bytes:
    """The bytes each side signs (see the module docstring)."""
    payload: list[enc.RLPItem] = [
        enc.encode_int(chain_id),
        initiator.public_key,
        initiator.nonce,
        responder.public_key,
        responder.nonce,
        enc.encode_int(signer_role),
    ]
    return HANDSHAKE_SIGN_PREFIX + enc.encode(payload)


async def _expect(reader: asyncio.StreamReader, kind: FrameKind, max_bytes: int) -> bytes:
    try:
        got, body = await read_frame(reader, max_bytes)
    except FrameError as exc:
        reason = "oversize_frame" if isinstance(exc, OversizeFrame) else "bad_frame"
        raise HandshakeError(reason, f"handshake: {exc}") from exc
    if got is not kind:
        raise HandshakeError("bad_frame", f"handshake: expected {kind.name}, got {got.name}")
    return body


async def perform_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    key: PrivateKey,
    chain_id: int,
    allowed: frozenset[bytes],
    initiator: bool,
    max_bytes: int,
) -> bytes:
    """Authenticate the connection; returns the peer's public key. Raises HandshakeError
    (reason ``wrong_chain``, ``unknown_key``, ``bad_signature``, ``bad_frame``,
    ``oversize_frame``) or asyncio.IncompleteReadError if the peer hangs up."""
    own = Hello(PROTOCOL_VERSION, chain_id, key.public_key.to_bytes(), secrets.token_bytes(32))
    writer.write(encode_frame(FrameKind.HELLO, own.encode()))
    await writer.drain()
    body = await _expect(reader, FrameKind.HELLO, max_bytes)
    try:
        theirs = Hello.decode(body)
    except EncodingError as exc:
        raise HandshakeError("bad_frame", f"handshake: malformed hello: {exc}") from exc
    if theirs.version != PROTOCOL_VERSION:
        raise HandshakeError("bad_frame", f"handshake: protocol version {theirs.version}")
    if theirs.chain_id != chain_id:
        raise HandshakeError("wrong_chain", f"handshake: peer is on chain {theirs.chain_id}")
    if theirs.public_key not in allowed or theirs.public_key == own.public_key:
        raise HandshakeError("unknown_key", "handshake: peer key is not a configured peer")
    first, second = (own, theirs) if initiator else (theirs, own)
    own_role, their_role = (INITIATOR, RESPONDER) if initiator else (RESPONDER, INITIATOR)
    signature = key.sign(handshake_sign_bytes(chain_id, first, second, own_role))
    writer.write(encode_frame(FrameKind.AUTH, signature))
    await writer.drain()
    their_signature = await _expect(reader, FrameKind.AUTH, max_bytes)
    try:
        PublicKey.from_bytes(theirs.public_key).verify(
            their_signature, handshake_sign_bytes(chain_id, first, second, their_role)
        )
    except CryptoError as exc:
        raise HandshakeError("bad_signature", "handshake: bad signature") from exc
    return theirs.public_key
