"""Simulated blocks of calls (``chain.execution.simulate``, eth_simulateV1): state carried
between calls and blocks and never stored; each call priced as in a block of its own (warm
accounts and slots forgotten between calls); the block environment the EVM reads follows the
overrides and their defaults, gaps in the numbers filled; a revert in the middle does not stop
the calls after it; transfers reported as logs where they happened; nonce checks only with
validation; gas bounds; every bound refused before anything runs; a CallState on the same
state answers as before after a simulation, whether it returned or raised."""

from __future__ import annotations

import itertools

import pytest

from chain.errors import ExecutionError
from chain.execution import (
    MAX_BLOCKS,
    MAX_CALLS,
    TRANSFER_ADDRESS,
    TRANSFER_TOPIC,
    AccountAlloc,
    AccountOverride,
    BlockContext,
    BlockOverrides,
    BlockStateCalls,
    CallInterrupted,
    CallState,
    Refusal,
    SimulatedBlock,
    SimulatedCall,
    SimulationRefused,
    genesis_state,
    simulate,
)
from chain.execution.simulation import simulated_block_hash
from chain.primitives import Address, Hash32
from chain.types import Log

SENDER = Address(b"\x06" * 20)
PROPOSER = Address(b"\x07" * 20)
COUNTER = Address(b"\x05" * 20)
"""Adds one to its slot 0 and returns the new value."""
ENV = Address(b"\x0a" * 20)
"""Returns NUMBER, TIMESTAMP, COINBASE, BASEFEE, PREVRANDAO, BLOBBASEFEE, GASLIMIT."""
REVERTER = Address(b"\x0b" * 20)
"""Reverts with the 2 bytes 0xdead."""
FORWARDER = Address(b"\x0c" * 20)
"""Logs LOG1(topic 7), then CALLs SINK with all its call value, then DELEGATECALLs SINK."""
SINK = Address(b"\x0d" * 20)
"""Accepts anything; its code is a STOP."""
READER = Address(b"\x0e" * 20)
"""Reads its slots 1 and 2 and the balance of SINK."""
RICH = Address(b"\x0f" * 20)

PARENT = Hash32(b"\x99" * 32)
CONTEXT = BlockContext(
    chain_id=7, height=10, timestamp_ms=1_700_000_000_500, proposer=PROPOSER, gas_limit=5_000_000
)

ADD, MSTORE, SLOAD, SSTORE, RETURN, REVERT = b"\x01", b"\x52", b"\x54", b"\x55", b"\xf3", b"\xfd"
DUP1, GAS, CALL, DELEGATECALL, CALLVALUE, BALANCE = (
    b"\x80",
    b"\x5a",
    b"\xf1",
    b"\xf4",
    b"\x34",
    b"\x31",
)
LOG1, POP, STOP = b"\xa1", b"\x50", b"\x00"
NUMBER, TIMESTAMP, COINBASE, BASEFEE = b"\x43", b"\x42", b"\x41", b"\x48"
PREVRANDAO, BLOBBASEFEE, GASLIMIT = b"\x44", b"\x4a", b"\x45"


def push(value: int | bytes) -> bytes:
    """PUSHn of ``value`` (an int in the fewest bytes, at least one)."""
    raw = (
        value
        if isinstance(value, bytes)
        else value.to_bytes(max(1, -(-value.bit_length() // 8)), "big")
    )
    return bytes([0x5F + len(raw)]) + raw


def returning_words(*pushes: bytes) -> bytes:
    """Code that stores each pushed word in turn and returns them all."""
    code = b"".join(word + push(32 * i) + MSTORE for i, word in enumerate(pushes))
    return code + push(32 * len(pushes)) + push(0) + RETURN


COUNTER_CODE = push(0) + SLOAD + push(1) + ADD + DUP1 + push(0) + SSTORE + returning_words(b"")
# returning_words(b"") stores the top of the stack (the new value) at 0 and returns it.
ENV_CODE = returning_words(NUMBER, TIMESTAMP, COINBASE, BASEFEE, PREVRANDAO, BLOBBASEFEE, GASLIMIT)
REVERTER_CODE = push(0xDEAD) + push(0) + MSTORE + push(2) + push(30) + REVERT
FORWARDER_CODE = (
    push(7) + push(0) + push(0) + LOG1
    + push(0) * 4 + CALLVALUE + push(SINK) + GAS + CALL + POP
    + push(0) * 4 + push(SINK) + GAS + DELEGATECALL + POP
)  # fmt: skip
READER_CODE = push(1) + SLOAD + POP + push(2) + SLOAD + POP + push(SINK) + BALANCE + POP


def word(value: int | bytes) -> int:
    return value if isinstance(value, int) else int.from_bytes(value, "big")


def _state() -> tuple[dict[bytes, bytes], Hash32]:
    update = genesis_state(
        {
            COUNTER: AccountAlloc(code=COUNTER_CODE),
            ENV: AccountAlloc(code=ENV_CODE),
            REVERTER: AccountAlloc(code=REVERTER_CODE),
            FORWARDER: AccountAlloc(code=FORWARDER_CODE),
            SINK: AccountAlloc(code=STOP),
            READER: AccountAlloc(code=READER_CODE, storage={1: 1, 2: 2}),
            RICH: AccountAlloc(balance=10**18),
        }
    )
    return dict(update.writes), update.state_root


def _simulate(
    blocks: list[BlockStateCalls], store: dict[bytes, bytes] | None = None, **options: object
) -> tuple[SimulatedBlock, ...]:
    if store is None:
        store, root = _state()
    else:
        root = _state()[1]
    return simulate(store, root, CONTEXT, parent_hash=PARENT, blocks=blocks, **options)  # type: ignore[arg-type]


def _call(to: Address | None, sender: Address = SENDER, **fields: object) -> SimulatedCall:
    return SimulatedCall(sender=sender, to=to, **fields)  # type: ignore[arg-type]


def _outputs(block: SimulatedBlock) -> list[int]:
    return [int.from_bytes(result.output, "big") for result in block.calls]


def test_state_is_carried_between_calls_and_blocks_and_never_stored() -> None:
    store, root = _state()
    before = dict(store)
    blocks = _simulate(
        [
            BlockStateCalls(calls=(_call(COUNTER), _call(COUNTER))),
            BlockStateCalls(calls=(_call(COUNTER),)),
        ],
        store,
    )
    assert [_outputs(block) for block in blocks] == [[1, 2], [3]]
    assert store == before
    # A second simulation, and a call, start from the stored state again.
    again = _simulate([BlockStateCalls(calls=(_call(COUNTER),))], store)
    assert _outputs(again[0]) == [1]
    assert CallState(store, root, CONTEXT).call(sender=SENDER, to=COUNTER, data=b"").output[-1] == 1
    # State overrides hold from their block on, for the rest of the simulation only.
    overridden = _simulate(
        [
            BlockStateCalls(calls=(_call(COUNTER),)),
            BlockStateCalls(
                state_overrides={
                    COUNTER: AccountOverride(state_diff={bytes(32): (41).to_bytes(32, "big")})
                },
                calls=(_call(COUNTER),),
            ),
            BlockStateCalls(calls=(_call(COUNTER),)),
        ],
        store,
    )
    assert [_outputs(block) for block in overridden] == [[1], [42], [43]]
    assert store == before


def test_each_call_is_priced_as_in_a_block_of_its_own() -> None:
    # Were warm slots and accounts kept from one call to the next, the second would pay
    # warm prices for READER's slots and SINK's balance.
    (block,) = _simulate([BlockStateCalls(calls=(_call(READER), _call(READER)))])
    first, second = block.calls
    assert first.success and second.success
    assert first.gas_used == second.gas_used
    assert first.gas_used == 21_000 + 2 * (3 + 2_100 + 2) + 3 + 2_600 + 2
    assert block.gas_used == 2 * first.gas_used


def test_the_evm_reads_the_block_overrides_and_their_defaults() -> None:
    randao = Hash32(b"\x42" * 32)
    recipient = Address(b"\x43" * 20)
    blocks = _simulate(
        [
            BlockStateCalls(calls=(_call(ENV),)),
            BlockStateCalls(
                overrides=BlockOverrides(
                    number=14,
                    time=1_700_000_100,
                    gas_limit=4_000_000,
                    fee_recipient=recipient,
                    prev_randao=randao,
                    base_fee=10,
                    blob_base_fee=5,
                ),
                calls=(_call(ENV),),
            ),
            BlockStateCalls(calls=(_call(ENV),)),
        ]
    )
    # The defaults: parent + 1, a second later, zero coinbase and randao, BASEFEE 0,
    # BLOBBASEFEE 1, the parent's gas limit.
    assert [block.number for block in blocks] == [11, 12, 13, 14, 15]
    default, gap_1, gap_2, overridden, after = blocks
    env = [word(result.output[i : i + 32]) for result in default.calls for i in range(0, 224, 32)]
    assert env == [11, 1_700_000_001, 0, 0, 0, 1, 5_000_000]
    assert default.timestamp == 1_700_000_001 and default.base_fee is None
    # Numbers 12 and 13 are empty blocks a second apart.
    assert (gap_1.calls, gap_2.calls) == ((), ())
    assert (gap_1.timestamp, gap_2.timestamp) == (1_700_000_002, 1_700_000_003)
    env = [word(overridden.calls[0].output[i : i + 32]) for i in range(0, 224, 32)]
    assert env == [14, 1_700_000_100, word(recipient), 10, word(randao), 5, 4_000_000]
    assert (overridden.base_fee, overridden.blob_base_fee, overridden.gas_limit) == (
        10,
        5,
        4_000_000,
    )
    assert (overridden.fee_recipient, overridden.prev_randao) == (recipient, randao)
    # Overrides hold for their block only.
    env = [word(after.calls[0].output[i : i + 32]) for i in range(0, 224, 32)]
    assert env == [15, 1_700_000_101, 0, 0, 0, 1, 5_000_000]
    # Blocks chain by hash, and each hash is the documented digest of its block.
    assert blocks[0].parent_hash == PARENT
    for parent, child in itertools.pairwise(blocks):
        assert child.parent_hash == parent.hash
    assert all(block.hash == simulated_block_hash(block) for block in blocks)
    assert len({block.hash for block in blocks}) == len(blocks)


def test_a_revert_in_the_middle_does_not_stop_the_calls_after_it() -> None:
    (block,) = _simulate(
        [
            BlockStateCalls(
                calls=(_call(COUNTER), _call(REVERTER), _call(COUNTER), _call(ENV, gas=21_050))
            )
        ]
    )
    counted, reverted, counted_again, out_of_gas = block.calls
    assert counted.success and counted_again.success
    assert _outputs(block)[0] == 1 and _outputs(block)[2] == 2
    assert not reverted.success and reverted.reverted and reverted.output == b"\xde\xad"
    assert reverted.logs == ()
    assert not out_of_gas.success and not out_of_gas.reverted and out_of_gas.error
    assert out_of_gas.gas_used == 21_050
    assert block.gas_used == sum(result.gas_used for result in block.calls)
    assert len({result.tx_hash for result in block.calls}) == 4


def test_transfers_are_logs_where_they_happened_when_traced() -> None:
    calls = (_call(FORWARDER, sender=RICH, value=5), _call(SINK, sender=RICH, value=0))
    (traced,) = _simulate([BlockStateCalls(calls=calls)], trace_transfers=True)
    (plain,) = _simulate([BlockStateCalls(calls=calls)])

    def transfer(sender: Address, to: Address, value: int) -> Log:
        return Log(
            address=TRANSFER_ADDRESS,
            topics=(TRANSFER_TOPIC, Hash32(bytes(12) + sender), Hash32(bytes(12) + to)),
            data=value.to_bytes(32, "big"),
        )

    emitted = Log(address=FORWARDER, topics=(Hash32((7).to_bytes(32, "big")),), data=b"")
    # The call's value, the log, then the CALL's value; not the DELEGATECALL, nor a call
    # without value.
    assert traced.calls[0].logs == (
        transfer(RICH, FORWARDER, 5),
        emitted,
        transfer(FORWARDER, SINK, 5),
    )
    assert traced.calls[1].logs == ()
    assert plain.calls[0].logs == (emitted,)
    # A failed frame drops its transfer with its logs.
    (failed,) = _simulate(
        [BlockStateCalls(calls=(_call(REVERTER, sender=RICH, value=1),))], trace_transfers=True
    )
    assert failed.calls[0].logs == ()


def test_a_nonce_is_checked_only_with_validation() -> None:
    calls = (_call(COUNTER, nonce=0), _call(COUNTER, nonce=1))
    (block,) = _simulate([BlockStateCalls(calls=calls)], validation=True)
    assert [result.call.nonce for result in block.calls] == [0, 1]
    for nonce, refusal in ((2, Refusal.NONCE_TOO_HIGH), (0, Refusal.NONCE_TOO_LOW)):
        bad = (_call(COUNTER, nonce=0), _call(COUNTER, nonce=nonce))
        with pytest.raises(SimulationRefused) as refused:
            _simulate([BlockStateCalls(calls=bad)], validation=True)
        assert refused.value.refusal is refusal
        (ignored,) = _simulate([BlockStateCalls(calls=bad)])
        assert [result.call.nonce for result in ignored.calls] == [0, 1]


def test_gas_defaults_to_what_is_left_in_the_block_within_the_allowance() -> None:
    (block,) = _simulate([BlockStateCalls(calls=(_call(COUNTER), _call(COUNTER)))])
    first, second = block.calls
    assert first.call.gas == 5_000_000
    assert second.call.gas == 5_000_000 - first.gas_used
    capped = _simulate([BlockStateCalls(calls=(_call(COUNTER),))], gas_allowance=100_000)
    assert capped[0].calls[0].call.gas == 100_000
    with pytest.raises(SimulationRefused) as too_much:
        _simulate([BlockStateCalls(calls=(_call(COUNTER, gas=5_000_001),))])
    assert too_much.value.refusal is Refusal.BLOCK_GAS_LIMIT
    with pytest.raises(SimulationRefused) as used_up:
        _simulate([BlockStateCalls(calls=(_call(COUNTER),) * 3)], gas_allowance=60_000)
    assert used_up.value.refusal is Refusal.CLIENT_LIMIT
    with pytest.raises(SimulationRefused) as intrinsic:
        _simulate([BlockStateCalls(calls=(_call(COUNTER, gas=20_000),))])
    assert intrinsic.value.refusal is Refusal.INTRINSIC_GAS
    with pytest.raises(SimulationRefused) as funds:
        _simulate([BlockStateCalls(calls=(_call(SINK, value=1),))])
    assert funds.value.refusal is Refusal.INSUFFICIENT_FUNDS


# The first block's call would be refused for its value if anything ran before the bounds
# were checked.
UNAFFORDABLE = BlockStateCalls(calls=(_call(SINK, value=1),))


@pytest.mark.parametrize(
    ("blocks", "refusal"),
    [
        ([UNAFFORDABLE] * (MAX_BLOCKS + 1), Refusal.CLIENT_LIMIT),
        (
            [UNAFFORDABLE, BlockStateCalls(calls=(_call(COUNTER),) * MAX_CALLS)],
            Refusal.CLIENT_LIMIT,
        ),
        (
            [
                UNAFFORDABLE,
                BlockStateCalls(overrides=BlockOverrides(number=CONTEXT.height + MAX_BLOCKS + 1)),
            ],
            Refusal.CLIENT_LIMIT,
        ),
        (
            [UNAFFORDABLE, BlockStateCalls(overrides=BlockOverrides(number=11))],
            Refusal.BLOCK_NUMBER,
        ),
        (
            [UNAFFORDABLE, BlockStateCalls(overrides=BlockOverrides(time=1_700_000_001))],
            Refusal.BLOCK_TIMESTAMP,
        ),
    ],
)
def test_bounds_and_order_are_refused_before_anything_runs(
    blocks: list[BlockStateCalls], refusal: Refusal
) -> None:
    with pytest.raises(SimulationRefused) as refused:
        _simulate(blocks)
    assert refused.value.refusal is refusal


def test_at_the_bounds_the_simulation_runs() -> None:
    blocks = _simulate(
        [BlockStateCalls(overrides=BlockOverrides(number=CONTEXT.height + MAX_BLOCKS))]
    )
    assert len(blocks) == MAX_BLOCKS
    calls = (_call(SINK),) * 100
    many = _simulate([BlockStateCalls(calls=calls)] * (MAX_CALLS // 100), gas_allowance=10**8)
    assert sum(len(block.calls) for block in many) == MAX_CALLS


def test_malformed_inputs_are_refused_before_anything_runs() -> None:
    override = {Address(bytes([i]) * 20): AccountOverride(balance=1) for i in range(200)}
    # 200 accounts, then 61 more: each block within the bound, not all together.
    more = {Address(b"\xaa" * 20): AccountOverride(balance=1), **dict(list(override.items())[:60])}
    too_many_accounts = [
        UNAFFORDABLE,
        BlockStateCalls(state_overrides=override),
        BlockStateCalls(state_overrides=more),
    ]
    for blocks in (
        too_many_accounts,
        [UNAFFORDABLE, BlockStateCalls(overrides=BlockOverrides(prev_randao=Hash32(b"\x01")))],
        [UNAFFORDABLE, BlockStateCalls(overrides=BlockOverrides(base_fee=-1))],
        [UNAFFORDABLE, BlockStateCalls(calls=(_call(Address(b"\x01")),))],
        [UNAFFORDABLE, BlockStateCalls(calls=(_call(COUNTER, gas=2**64),))],
        [UNAFFORDABLE, BlockStateCalls(state_overrides={COUNTER: AccountOverride(nonce=2**64)})],
    ):
        with pytest.raises(ExecutionError) as refused:
            _simulate(blocks)
        assert not isinstance(refused.value, SimulationRefused)


def test_a_call_state_answers_as_before_after_a_simulation_returned_or_raised() -> None:
    store, root = _state()
    before = dict(store)
    state = CallState(store, root, CONTEXT)

    def counter() -> int:
        return state.call(sender=SENDER, to=COUNTER, data=b"").output[-1]

    assert counter() == 1
    _simulate([BlockStateCalls(calls=(_call(COUNTER),) * 3)], store)
    assert counter() == 1
    with pytest.raises(SimulationRefused):  # raised by the third call, after two ran
        _simulate(
            [BlockStateCalls(calls=(_call(COUNTER), _call(COUNTER), _call(SINK, value=1)))], store
        )
    assert counter() == 1
    looks = iter([False, False, True])
    with pytest.raises(CallInterrupted):  # stopped before the third call
        _simulate(
            [BlockStateCalls(calls=(_call(COUNTER),) * 3)], store, should_stop=lambda: next(looks)
        )
    assert counter() == 1
    assert store == before
    (block,) = _simulate([BlockStateCalls(calls=(_call(COUNTER),))], store)
    assert _outputs(block) == [1]
