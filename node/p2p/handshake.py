"""The p2p handshake: both nodes prove they hold the key the other expects, on this chain, and
agree on fresh keys that encrypt and authenticate every later frame.

1. Each side sends a HELLO frame in clear, RLP
   ``[version, chain id, node public key, ephemeral public key, encrypted]``, with a fresh
   ephemeral key pair on the SM2 curve (:func:`chain.crypto.channel.ephemeral_key`), and
   checks the other's: same version, chain id and encryption setting, a node key on its
   allow-list, a valid ephemeral point that is not its own (a reflected HELLO).
2. Each side computes the ECDH shared secret of the two ephemeral keys and the transcript
   hash ``SM3("lianxin/p2p-transcript/v2\\0" || RLP([chain id, initiator node key,
   initiator ephemeral key, responder node key, responder ephemeral key, encrypted]))``, and
   derives per-direction SM4 and HMAC-SM3 keys with HKDF-SM3 salted by that hash
   (:func:`chain.crypto.channel.derive_session_keys`).
3. Each side sends an AUTH frame, already sealed with the new keys: its SM2 node-key
   signature over ``"lianxin/p2p-handshake/v2\\0" || transcript hash || signer role``. The
   signature binds both node keys, both ephemeral keys and the chain id; the role (1
   initiator, 2 responder) keeps one side's signature from being reflected back as the
   other's; and opening the sealed AUTH proves the sender derived the same keys.

Only a man in the middle who holds a node key could pass, and then only as that node. Every
handshake frame is limited to :data:`chain.limits.MAX_PREAUTH_FRAME_BYTES`.

With encryption off (a setting for benchmarks and tests only, see
:attr:`node.config.NodeConfig.p2p_encryption`), the same handshake runs and AUTH and later
frames travel in clear; both sides must agree, and the setting is in the signed transcript.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container
from dataclasses import dataclass
from typing import Protocol

from chain import encoding as enc
from chain.crypto import PublicKey, sm3
from chain.crypto.channel import (
    FrameAuthError,
    FrameOpener,
    FrameSealer,
    derive_session_keys,
    ephemeral_key,
)
from chain.errors import CryptoError, EncodingError
from chain.limits import MAX_PREAUTH_FRAME_BYTES

from .channel import Channel
from .frames import FrameError, FrameKind, OversizeFrame, encode_frame, read_frame

HANDSHAKE_SIGN_PREFIX = b"lianxin/p2p-handshake/v2\x00"
"""Domain separation of handshake signatures."""
TRANSCRIPT_PREFIX = b"lianxin/p2p-transcript/v2\x00"
"""Domain separation of the transcript hash."""

PROTOCOL_VERSION = 2
INITIATOR = 1
RESPONDER = 2


class HandshakeError(Exception):
    """A connection that failed to authenticate; ``reason`` is the counter it feeds."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NodeKey(Protocol):
    """What the handshake needs of the node's private key."""

    @property
    def public_key(self) -> PublicKey:
        """The node's public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """A DER SM2 signature over ``message``."""
        ...


@dataclass(frozen=True)
class Hello:
    """The first handshake frame."""

    version: int
    """Protocol version, :data:`PROTOCOL_VERSION`."""
    chain_id: int
    """The chain the sender is on."""
    public_key: bytes
    """The sender's node (validator) key, 65 bytes."""
    ephemeral_key: bytes
    """The sender's ephemeral key of this connection, 65 bytes."""
    encrypted: bool
    """Whether the sender encrypts frames after the handshake."""

    def encode(self) -> bytes:
        """Canonical RLP."""
        return enc.encode(
            [
                enc.encode_int(self.version),
                enc.encode_int(self.chain_id),
                self.public_key,
                self.ephemeral_key,
                enc.encode_int(int(self.encrypted)),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Hello:
        """Inverse of :meth:`encode`; raises EncodingError."""
        version, chain_id, public_key, ephemeral, encrypted = enc.as_list(
            enc.decode(data), "Hello", 5
        )
        flag = enc.decode_int(encrypted, "Hello.encrypted")
        if flag > 1:
            raise EncodingError("Hello.encrypted: expected 0 or 1")
        return cls(
            version=enc.decode_int(version, "Hello.version"),
            chain_id=enc.decode_int(chain_id, "Hello.chain_id"),
            public_key=enc.as_bytes(public_key, "Hello.public_key", 65),
            ephemeral_key=enc.as_bytes(ephemeral, "Hello.ephemeral_key", 65),
            encrypted=bool(flag),
        )


def transcript_hash(chain_id: int, initiator: Hello, responder: Hello) -> bytes:
    """The hash both signatures and the session keys are bound to."""
    payload: list[enc.RLPItem] = [
        enc.encode_int(chain_id),
        initiator.public_key,
        initiator.ephemeral_key,
        responder.public_key,
        responder.ephemeral_key,
        enc.encode_int(int(initiator.encrypted)),
    ]
    return sm3(TRANSCRIPT_PREFIX + enc.encode(payload))


def handshake_sign_bytes(transcript: bytes, signer_role: int) -> bytes:
    """The bytes each side signs (see the module docstring)."""
    return HANDSHAKE_SIGN_PREFIX + transcript + bytes([signer_role])


@dataclass(frozen=True)
class Session:
    """An authenticated connection."""

    peer_key: bytes
    """The peer's node key, proven by its signature."""
    channel: Channel
    """Frames over the connection from now on (sealed unless encryption is off)."""


async def _read_hello(reader: asyncio.StreamReader) -> Hello:
    try:
        kind, body = await read_frame(reader, MAX_PREAUTH_FRAME_BYTES)
    except FrameError as exc:
        reason = "oversize_frame" if isinstance(exc, OversizeFrame) else "bad_frame"
        raise HandshakeError(reason, f"handshake: {exc}") from exc
    if kind is not FrameKind.HELLO:
        raise HandshakeError("bad_frame", f"handshake: expected HELLO, got {kind.name}")
    try:
        return Hello.decode(body)
    except EncodingError as exc:
        raise HandshakeError("bad_frame", f"handshake: malformed hello: {exc}") from exc


async def perform_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    key: NodeKey,
    chain_id: int,
    allowed: Container[bytes],
    initiator: bool,
    max_bytes: int,
    encrypted: bool = True,
) -> Session:
    """Authenticate the connection and set up its channel (frames up to ``max_bytes`` after
    the handshake). Raises HandshakeError (reason ``wrong_chain``, ``unknown_key``,
    ``bad_signature``, ``bad_frame``, ``oversize_frame``, ``encryption_mismatch``,
    ``frame_auth_failed``) or asyncio.IncompleteReadError if the peer hangs up."""
    ephemeral = ephemeral_key()
    own = Hello(
        PROTOCOL_VERSION, chain_id, key.public_key.to_bytes(), ephemeral.public_key, encrypted
    )
    writer.write(encode_frame(FrameKind.HELLO, own.encode()))
    await writer.drain()
    theirs = await _read_hello(reader)
    if theirs.version != PROTOCOL_VERSION:
        raise HandshakeError("bad_frame", f"handshake: protocol version {theirs.version}")
    if theirs.chain_id != chain_id:
        raise HandshakeError("wrong_chain", f"handshake: peer is on chain {theirs.chain_id}")
    if theirs.public_key not in allowed or theirs.public_key == own.public_key:
        raise HandshakeError("unknown_key", "handshake: peer key is not on the allow-list")
    if theirs.encrypted != encrypted:
        raise HandshakeError("encryption_mismatch", "handshake: peers disagree on encryption")
    if theirs.ephemeral_key == own.ephemeral_key:
        raise HandshakeError("bad_frame", "handshake: reflected ephemeral key")
    try:
        shared = ephemeral.agree(theirs.ephemeral_key)
    except CryptoError as exc:
        raise HandshakeError("bad_frame", f"handshake: bad ephemeral key: {exc}") from exc
    first, second = (own, theirs) if initiator else (theirs, own)
    transcript = transcript_hash(chain_id, first, second)
    sealer = opener = None
    if encrypted:
        keys = derive_session_keys(shared, transcript)
        outgoing, incoming = (
            (keys.initiator_to_responder, keys.responder_to_initiator)
            if initiator
            else (keys.responder_to_initiator, keys.initiator_to_responder)
        )
        sealer, opener = FrameSealer(outgoing), FrameOpener(incoming)
    channel = Channel(reader, writer, sealer, opener)
    own_role, their_role = (INITIATOR, RESPONDER) if initiator else (RESPONDER, INITIATOR)
    writer.write(
        channel.encode(FrameKind.AUTH, key.sign(handshake_sign_bytes(transcript, own_role)))
    )
    await writer.drain()
    try:
        kind, their_signature = await channel.read(MAX_PREAUTH_FRAME_BYTES)
    except FrameAuthError as exc:
        raise HandshakeError("frame_auth_failed", f"handshake: {exc}") from exc
    except FrameError as exc:
        reason = "oversize_frame" if isinstance(exc, OversizeFrame) else "bad_frame"
        raise HandshakeError(reason, f"handshake: {exc}") from exc
    if kind is not FrameKind.AUTH:
        raise HandshakeError("bad_frame", f"handshake: expected AUTH, got {kind.name}")
    try:
        PublicKey.from_bytes(theirs.public_key).verify(
            their_signature, handshake_sign_bytes(transcript, their_role)
        )
    except CryptoError as exc:
        raise HandshakeError("bad_signature", "handshake: bad signature") from exc
    channel.max_bytes = max_bytes
    return Session(theirs.public_key, channel)
