"""Is this node healthy, and if not, why: the verdict of ``lianxin node status`` and
``lianxin net status``, with exit codes after the monitoring-plugin convention that Nagios,
Icinga and most check runners read:

====  ==========  ============================================================================
code  verdict     when
====  ==========  ============================================================================
0     ok          committing, every configured peer connected
1     warning     committing, but a configured peer is not connected
2     critical    no block committed for ``stall_after_s`` seconds (consensus has stopped here)
3     unknown     the node does not answer JSON-RPC
====  ==========  ============================================================================

A single-validator dev chain makes blocks only when transactions arrive, so an idle one is
never judged stalled; a consensus node makes a block every round, empty or not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from node.rpc_client import RpcError, rpc_call

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
VERDICTS = {OK: "ok", WARNING: "warning", CRITICAL: "critical", UNKNOWN: "unknown"}
DEFAULT_STALL_AFTER_S = 30.0
"""No commit for this long is critical: many propose timeouts, far beyond a slow round."""


@dataclass
class Health:
    """A verdict and the reasons behind it."""

    code: int = OK
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return VERDICTS[self.code]

    def worse(self, code: int, reason: str) -> None:
        self.code = max(self.code, code)
        self.reasons.append(reason)


def assess(
    *,
    head_age_s: float,
    consensus: dict[str, Any] | None,
    peers: list[dict[str, Any]] | None,
    stall_after_s: float = DEFAULT_STALL_AFTER_S,
) -> Health:
    """Judge a node from the age of its head block (now - its timestamp), its consensus
    status (``lianxin_getConsensusStatus``; ``None`` on a dev chain) and its configured peers
    (``lianxin_getPeers``: name and ``connected``)."""
    health = Health()
    if consensus is not None and head_age_s > stall_after_s:
        health.worse(
            CRITICAL,
            f"no block committed for {head_age_s:.0f} s (height {consensus.get('height')}, "
            f"round {consensus.get('round')}, step {consensus.get('step')})",
        )
    for peer in peers or []:
        if not peer.get("connected"):
            health.worse(WARNING, f"peer {peer.get('name') or peer.get('address')} not connected")
    return health


def probe(
    url: str, *, stall_after_s: float = DEFAULT_STALL_AFTER_S
) -> tuple[Health, dict[str, Any]]:
    """Ask the node at ``url`` and judge it; returns the verdict and what was read (height,
    chain id, head age, consensus status). A node that does not answer is UNKNOWN."""
    try:
        chain_id = int(rpc_call(url, "eth_chainId", [], timeout=5), 16)
        head = rpc_call(url, "eth_getBlockByNumber", ["latest", False], timeout=5)
        peers = rpc_call(url, "lianxin_getPeers", [], timeout=5)
        try:
            consensus = rpc_call(url, "lianxin_getConsensusStatus", [], timeout=5)
        except RpcError as exc:
            if exc.code is None:
                raise
            consensus = None  # a dev chain: no consensus driver
    except RpcError as exc:
        return Health(UNKNOWN, [f"no answer from {url}: {exc}"]), {"rpc": url}
    head_age = max(0.0, time.time() - int(head["timestamp"], 16))
    health = assess(
        head_age_s=head_age,
        consensus=consensus if isinstance(consensus, dict) else None,
        peers=peers if isinstance(peers, list) else None,
        stall_after_s=stall_after_s,
    )
    read = {
        "rpc": url,
        "chain_id": chain_id,
        "height": int(head["number"], 16),
        "head_age_s": round(head_age, 1),
        "peers_connected": sum(1 for peer in peers or [] if peer.get("connected")),
        "peers_configured": len(peers or []),
        **software(url),
    }
    return health, read


def software(url: str) -> dict[str, Any]:
    """What the node at ``url`` runs: ``version`` (its ``web3_clientVersion``) and
    ``schedule_digest`` (of the parameter schedule it loaded; ``None`` from a node that
    predates ``lianxin_getNodeVersion``). During a rolling upgrade these say which nodes
    run the new build and hold the new schedule."""
    found: dict[str, Any] = {"version": None, "schedule_digest": None}
    try:
        found["version"] = rpc_call(url, "web3_clientVersion", [], timeout=5)
        described = rpc_call(url, "lianxin_getNodeVersion", [], timeout=5)
    except RpcError:
        return found
    if isinstance(described, dict):
        found["schedule_digest"] = described.get("scheduleDigest")
    return found
