"""What a validator reports about its consensus over JSON-RPC: ``lianxin_getConsensusStatus``
(height, round, step, locks, head, role, the keys it may sign with, validator set, peers,
counters) and ``lianxin_getPeers`` (each configured peer, whether it is connected, the
height it announced)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from node.p2p import Network

if TYPE_CHECKING:
    from node.consensus_driver import ConsensusDriver


def consensus_status(driver: ConsensusDriver) -> dict[str, Any]:
    """The consensus status of ``driver``, with the p2p counters prefixed ``p2p_``."""
    state = driver.state
    head = driver.ledger.head
    counters = Counter(driver.counters)
    counters.update({f"p2p_{k}": v for k, v in driver.network.counters.items()})
    return {
        "mode": "tendermint",
        "height": hex(state.height),
        "round": hex(state.round),
        "step": state.step.name.lower(),
        "lockedRound": None if state.locked_round < 0 else hex(state.locked_round),
        "validRound": None if state.valid_round < 0 else hex(state.valid_round),
        "headHeight": hex(head.height),
        "headHash": "0x" + head.hash.hex(),
        "validator": "0x" + driver.key.public_key.address.hex(),
        "keyring": keyring_status(driver),
        "role": "validator" if driver.is_member else "observer",
        "validatorSetHash": "0x" + driver.validators.hash().hex(),
        "validators": len(driver.validators.validators),
        "peers": len(driver.network.connected()),
        "p2pPort": driver.network.port,
        "pendingTransactions": hex(len(driver.mempool)),
        "counters": dict(sorted(counters.items())),
    }


def keyring_status(driver: ConsensusDriver) -> dict[str, Any]:
    """The consensus keys the node holds (its configured key and its keyring folder's), so an
    operator sees a rotated key is ready before it rules, and the keystores it could not
    open."""
    keyring = driver.keyring
    if keyring is None:
        return {"keys": ["0x" + driver.key.public_key.address.hex()], "refused": 0}
    return {
        "keys": sorted("0x" + bytes(address).hex() for address in keyring.keys),
        "refused": keyring.refused,
    }


def peer_status(network: Network, heights: Mapping[bytes, int]) -> list[dict[str, Any]]:
    """Every configured peer of ``network``: name, address, key, endpoint, whether it is
    connected, and the committed height it last announced (``heights``), if any."""
    return [
        {
            "name": info.name,
            "address": "0x" + info.address.hex(),
            "publicKey": "0x" + info.public_key.hex(),
            "endpoint": f"{info.host}:{info.port}",
            "connected": info.connected,
            "height": None if info.public_key not in heights else hex(heights[info.public_key]),
        }
        for info in network.peer_info()
    ]
