"""Opening a state to execute a block or answer a call reads nothing but its root: Cancun's
look at the beacon-roots contract (EIP-4788) is not made, and leaving it out changes no
state root, also where a genesis holds that contract's code at its address."""

from __future__ import annotations

from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CONTRACT_CODE

from chain.execution import AccountAlloc, BlockContext, CallState, execute_block, genesis_state
from chain.primitives import Address, Hash32

CONTEXT = BlockContext(
    chain_id=7, height=1, timestamp_ms=1_700_000_000_000, proposer=Address(b"\x01" * 20)
)


class CountingReader:
    """A state store that counts its reads."""

    def __init__(self, values: dict[bytes, bytes]) -> None:
        self.values = values
        self.reads: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(key)
        return self.values.get(key)


def test_opening_a_state_reads_only_its_root() -> None:
    genesis = genesis_state({Address(b"\x02" * 20): AccountAlloc(balance=5)})
    reader = CountingReader(dict(genesis.writes))
    CallState(reader, genesis.state_root, CONTEXT)
    assert reader.reads == [genesis.state_root]

    reader.reads.clear()
    execution = execute_block(reader, genesis.state_root, CONTEXT, [])
    assert execution.state_root == genesis.state_root


def test_a_genesis_holding_the_beacon_roots_code_keeps_its_root() -> None:
    beacon = Address(bytes(BEACON_ROOTS_ADDRESS))
    genesis = genesis_state({beacon: AccountAlloc(code=BEACON_ROOTS_CONTRACT_CODE)})
    execution = execute_block(dict(genesis.writes), genesis.state_root, CONTEXT, [])
    assert execution.state_root == Hash32(genesis.state_root)
