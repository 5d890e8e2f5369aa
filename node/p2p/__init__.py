"""Validator-to-validator transport: authenticated TCP connections carrying bounded frames.

:mod:`node.p2p.frames` reads and writes frames, :mod:`node.p2p.handshake` authenticates a
connection with both nodes' SM2 keys, and :mod:`node.p2p.network` keeps one connection per
configured peer (dialling with backoff, accepting, replacing stale ones) and hands every
received frame to the node.
"""

from node.p2p.frames import FrameError, FrameKind, OversizeFrame
from node.p2p.handshake import HANDSHAKE_SIGN_PREFIX, HandshakeError
from node.p2p.network import Network, PeerInfo

__all__ = [
    "HANDSHAKE_SIGN_PREFIX",
    "FrameError",
    "FrameKind",
    "HandshakeError",
    "Network",
    "OversizeFrame",
    "PeerInfo",
]
