"""The health verdict of `lianxin node status` / `net status`, and who may read /metrics."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.health import CRITICAL, OK, WARNING, assess
from node.metrics import _loopback

CONSENSUS = {"height": "0x10", "round": "0x2", "step": "prevote"}


def test_a_committing_node_with_every_peer_is_ok() -> None:
    peers = [{"name": "node-1", "connected": True}, {"name": "node-2", "connected": True}]
    health = assess(head_age_s=1.0, consensus=CONSENSUS, peers=peers)
    assert (health.code, health.verdict, health.reasons) == (OK, "ok", [])


def test_a_missing_peer_is_a_warning_that_names_it() -> None:
    peers = [{"name": "node-1", "connected": True}, {"name": "node-2", "connected": False}]
    health = assess(head_age_s=1.0, consensus=CONSENSUS, peers=peers)
    assert health.code == WARNING
    assert health.reasons == ["peer node-2 not connected"]


def test_no_commit_past_the_limit_is_critical_and_outranks_a_missing_peer() -> None:
    peers = [{"name": "node-2", "connected": False}]
    health = assess(head_age_s=31.0, consensus=CONSENSUS, peers=peers, stall_after_s=30.0)
    assert health.code == CRITICAL and health.verdict == "critical"
    assert "no block committed for 31 s" in health.reasons[0]
    assert "step prevote" in health.reasons[0]


def test_an_idle_dev_chain_is_not_stalled() -> None:
    # A single-validator dev chain makes blocks only for transactions.
    assert assess(head_age_s=10_000.0, consensus=None, peers=[]).code == OK


@given(st.floats(min_value=0, max_value=1e6), st.floats(min_value=1, max_value=1e5))
def test_stalled_exactly_past_the_limit(age: float, limit: float) -> None:
    code = assess(head_age_s=age, consensus=CONSENSUS, peers=None, stall_after_s=limit).code
    assert code == (CRITICAL if age > limit else OK)


def test_metrics_are_for_loopback_clients_only() -> None:
    for address in ("127.0.0.1", "127.0.0.2", "::1"):
        assert _loopback(address)
    for address in ("10.0.0.5", "192.168.1.1", "2001:db8::1", "", None, "not an address"):
        assert not _loopback(address)
