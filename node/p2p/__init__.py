"""Validator-to-validator transport: authenticated, encrypted TCP connections carrying
bounded frames.

:mod:`node.p2p.frames` defines frames, :mod:`node.p2p.handshake` authenticates a connection
with both nodes' SM2 keys and agrees on session keys, :mod:`node.p2p.channel` seals and
opens the frames after it, and :mod:`node.p2p.network` keeps one connection per allowed peer
(dialling with backoff, accepting within caps, heartbeats, following the validator set) and
hands every received frame to the node. ``docs/p2p.md`` describes the whole construction.
"""

from node.p2p.frames import FrameAuthFailed, FrameError, FrameKind, OversizeFrame
from node.p2p.handshake import HANDSHAKE_SIGN_PREFIX, HandshakeError, Session
from node.p2p.network import Network, PeerInfo, TransportSettings, transport_settings

__all__ = [
    "HANDSHAKE_SIGN_PREFIX",
    "FrameAuthFailed",
    "FrameError",
    "FrameKind",
    "HandshakeError",
    "Network",
    "OversizeFrame",
    "PeerInfo",
    "Session",
    "TransportSettings",
    "transport_settings",
]
