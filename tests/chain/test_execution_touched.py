"""Which accounts a block's execution reports as touched: every account it changed (directly,
through a contract's call, or by a system write) must be listed, since the node keeps roles
read from the Permissions contract across blocks that leave it out."""

from __future__ import annotations

from chain.execution import AccountAlloc, execute_block, storage_at
from chain.liveness import StorageWrite
from chain.primitives import Address
from tests.chain.test_execution import Ledger

WRITER = Address(bytes.fromhex("00000000000000000000000000000000000000c1"))
CALLER = Address(bytes.fromhex("00000000000000000000000000000000000000c2"))
BYSTANDER = Address(bytes.fromhex("00000000000000000000000000000000000000c3"))

# PUSH1 1, PUSH1 0, SSTORE, STOP: sets slot 0 to 1.
WRITER_CODE = bytes.fromhex("600160005500")
# PUSH1 0 (x5: out size, out offset, in size, in offset, value), PUSH20 WRITER, GAS, CALL, STOP.
CALLER_CODE = bytes.fromhex("6000600060006000600073") + WRITER + bytes.fromhex("5af100")


def _ledger() -> Ledger:
    return Ledger(
        {
            WRITER: AccountAlloc(code=WRITER_CODE),
            CALLER: AccountAlloc(code=CALLER_CODE),
            BYSTANDER: AccountAlloc(code=WRITER_CODE, storage={0: 7}),
        }
    )


def test_a_contract_written_through_another_contracts_call_is_touched() -> None:
    ledger = _ledger()
    result = ledger.run([ledger.tx(CALLER, b"", gas_limit=100_000)])
    assert result.receipts[0].status == 1
    assert storage_at(ledger.store, ledger.root, WRITER, 0) == 1
    assert {CALLER, WRITER, ledger.sender} <= result.accounts_touched
    assert BYSTANDER not in result.accounts_touched


def test_a_system_write_touches_its_contract_and_an_empty_block_touches_no_contract() -> None:
    ledger = _ledger()
    empty = execute_block(ledger.store, ledger.root, ledger.context(), [])
    assert not empty.accounts_touched & {WRITER, CALLER, BYSTANDER}
    written = execute_block(
        ledger.store,
        ledger.root,
        ledger.context(),
        [],
        [StorageWrite(address=BYSTANDER, slot=0, value=9)],
    )
    assert written.accounts_touched & {WRITER, CALLER, BYSTANDER} == {BYSTANDER}


def test_a_reverted_write_still_counts_as_touched() -> None:
    ledger = _ledger()
    # Too little gas for the SSTORE: the call fails and its write is undone.
    result = ledger.run([ledger.tx(WRITER, b"", gas_limit=21_010)])
    assert result.receipts[0].status == 0
    assert WRITER in result.accounts_touched
    assert storage_at(ledger.store, ledger.root, WRITER, 0) == 0
