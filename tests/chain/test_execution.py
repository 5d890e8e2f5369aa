"""EVM execution through chain.execution: signed ledger transactions in, receipts, state root
and captured writes out; nothing written anywhere else."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import pytest
from eth_utils import keccak

from chain.crypto import PrivateKey, sm3
from chain.errors import ExecutionError, GenesisError, StorageError
from chain.execution import (
    EMPTY_CODE_HASH,
    EMPTY_STATE_ROOT,
    SM2_VERIFY_PRECOMPILE,
    SM3_PRECOMPILE,
    AccountAlloc,
    AccountInfo,
    BlockContext,
    BlockExecution,
    CallReverted,
    CallState,
    InapplicableTransaction,
    account_at,
    call,
    code_at,
    contract_address,
    estimate_gas,
    execute_block,
    genesis_state,
    intrinsic_gas,
    sender_address,
    storage_at,
)
from chain.primitives import Address, Hash32
from chain.types import Receipt, Transaction
from contracts.artifacts import load_artifact

CHAIN_ID = 7
PROPOSER = Address(bytes.fromhex("00000000000000000000000000000000000000aa"))
READER = Address(bytes.fromhex("00000000000000000000000000000000000000bb"))


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def encode_bytes_args(*values: bytes) -> bytes:
    """abi.encode(bytes, ..., bytes)."""
    head = b""
    tail = b""
    offset = 32 * len(values)
    for value in values:
        head += word(offset + len(tail))
        padded = value + bytes(-len(value) % 32)
        tail += word(len(value)) + padded
    return head + tail


class Ledger:
    """A dict-backed state store fed with each block's writes, as the node does with LMDB."""

    def __init__(self, alloc: Mapping[Address, AccountAlloc] | None = None) -> None:
        update = genesis_state(alloc or {})
        self.store: dict[bytes, bytes] = dict(update.writes)
        self.root = update.state_root
        self.height = 0
        self.key = PrivateKey.generate()
        self.counter = 0

    @property
    def sender(self) -> Address:
        return Address(self.key.public_key.address)

    def context(self, height: int | None = None, gas_limit: int = 30_000_000) -> BlockContext:
        return BlockContext(
            chain_id=CHAIN_ID,
            height=self.height + 1 if height is None else height,
            timestamp_ms=1_700_000_000_000 + 1_000 * self.height,
            proposer=PROPOSER,
            gas_limit=gas_limit,
        )

    def tx(
        self,
        to: Address | None,
        data: bytes,
        gas_limit: int = 1_000_000,
        value: int = 0,
        chain_id: int = CHAIN_ID,
    ) -> Transaction:
        self.counter += 1
        unsigned = Transaction(
            chain_id=chain_id,
            # Deterministic nonces keep the determinism checks meaningful across runs.
            nonce=Hash32(hashlib.sha256(b"nonce %d" % self.counter).digest()),
            block_limit=100,
            to=to,
            value=value,
            data=data,
            gas_limit=gas_limit,
            public_key=self.key.public_key.to_bytes(),
        )
        return dataclasses.replace(unsigned, signature=self.key.sign(unsigned.sign_bytes()))

    def run(
        self, transactions: Sequence[Transaction], gas_limit: int = 30_000_000
    ) -> BlockExecution:
        result = execute_block(
            self.store, self.root, self.context(gas_limit=gas_limit), transactions
        )
        self.store.update(result.writes)
        self.root = result.state_root
        self.height += 1
        return result

    def deploy(self, name: str, constructor_args: bytes = b"") -> Address:
        tx = self.tx(None, load_artifact(name).bytecode + constructor_args, gas_limit=3_000_000)
        (receipt,) = self.run([tx]).receipts
        assert receipt.status == 1, receipt
        assert receipt.contract_address is not None
        return receipt.contract_address

    def call(self, to: Address, data: bytes) -> bytes:
        result = call(self.store, self.root, self.context(), sender=READER, to=to, data=data)
        assert result.success, result
        return result.output


def balance_of(ledger: Ledger, account: Address) -> int:
    """BALANCE of ``account``, read by init code run through ``call``."""
    # PUSH20 account, BALANCE, PUSH1 0, MSTORE, PUSH1 32, PUSH1 0, RETURN
    init_code = bytes.fromhex("73") + account + bytes.fromhex("3160005260206000f3")
    result = call(
        ledger.store, ledger.root, ledger.context(), sender=READER, to=None, data=init_code
    )
    return int.from_bytes(result.output, "big")


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def test_deploy_lands_at_the_ledger_contract_address(ledger: Ledger) -> None:
    tx = ledger.tx(None, load_artifact("Anchor").bytecode, gas_limit=3_000_000)
    (receipt,) = ledger.run([tx]).receipts
    assert receipt.status == 1
    assert receipt.tx_hash == tx.hash
    assert receipt.contract_address == contract_address(sender_address(tx), 0)
    # Ethereum's CREATE rule: Keccak of RLP([sender, nonce]), the sender's first transaction.
    assert receipt.contract_address == keccak(b"\xd6\x94" + ledger.sender + b"\x80")[-20:]
    assert receipt.output == b""
    assert receipt.gas_used > intrinsic_gas(tx)
    code = call(
        ledger.store, ledger.root, ledger.context(), sender=READER, to=None, data=tx.data
    ).output
    assert code == load_artifact("Anchor").deployed_bytecode


def test_sender_address_is_sm3_of_public_key(ledger: Ledger) -> None:
    tx = ledger.tx(READER, b"")
    assert sender_address(tx) == sm3(tx.public_key[1:])[-20:] == ledger.sender


def test_anchor_receipts_logs_and_persistence_across_blocks(ledger: Ledger) -> None:
    anchor = ledger.deploy("Anchor")
    root_a, root_b = sm3(b"batch a"), sm3(b"batch b")
    call_a = selector("anchor(bytes32)") + root_a
    call_b = selector("anchor(bytes32)") + root_b
    first = ledger.run([ledger.tx(anchor, call_a), ledger.tx(anchor, call_b)])
    second = ledger.run([ledger.tx(anchor, call_a, gas_limit=100_000)])

    event_topic = keccak(text="Anchored(bytes32,address,uint256)")
    sender_topic = bytes(12) + ledger.sender
    expected = [(root_a, 1), (root_b, 1), (root_a, 2)]
    receipts = [*first.receipts, *second.receipts]
    for receipt, (root, count) in zip(receipts, expected, strict=True):
        assert receipt.status == 1
        assert receipt.contract_address is None
        (log,) = receipt.logs
        assert log.address == anchor
        assert log.topics == (event_topic, root, sender_topic)
        assert log.data == word(count)
        assert Receipt.decode(receipt.encode()) == receipt
    # A fresh slot costs more than an updated one.
    assert first.receipts[0].gas_used > second.receipts[0].gas_used

    assert ledger.call(anchor, selector("anchorCount(bytes32)") + root_a) == word(2)
    assert ledger.call(anchor, selector("total()")) == word(3)


def test_execution_writes_nothing_to_the_reader(ledger: Ledger) -> None:
    anchor = ledger.deploy("Anchor")
    before = dict(ledger.store)
    result = execute_block(
        MappingProxyType(ledger.store),
        ledger.root,
        ledger.context(),
        [ledger.tx(anchor, selector("anchor(bytes32)") + sm3(b"x"))],
    )
    assert ledger.store == before
    assert result.writes and result.state_root != ledger.root
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in result.writes.items())


def test_revert_and_out_of_gas_give_status_zero_and_count_gas(ledger: Ledger) -> None:
    counter = ledger.deploy("Counter", word(5))
    result = ledger.run(
        [
            ledger.tx(counter, selector("increment()")),
            ledger.tx(counter, selector("fail()")),
            ledger.tx(counter, selector("incrementBelow(uint256)") + word(7)),
            ledger.tx(counter, selector("incrementBelow(uint256)") + word(7)),
            ledger.tx(counter, selector("burn()"), gas_limit=200_000),
        ]
    )
    ok, failed, below, limit, burnt = result.receipts
    assert ok.status == below.status == 1
    assert failed.status == limit.status == burnt.status == 0
    assert failed.logs == limit.logs == burnt.logs == ()
    error_string = selector("Error(string)")
    assert failed.output.startswith(error_string) and b"Counter: always fails" in failed.output
    assert limit.output == selector("LimitReached(uint256)") + word(7)
    assert burnt.gas_used == 200_000
    assert burnt.output == b""
    assert 21_000 < failed.gas_used < 1_000_000
    assert ledger.call(counter, selector("count()")) == word(7)


def test_block_gas_limit_is_enforced_before_anything_applies(ledger: Ledger) -> None:
    counter = ledger.deploy("Counter", word(0))
    transactions = [ledger.tx(counter, selector("increment()"), gas_limit=60_000)] * 2
    with pytest.raises(InapplicableTransaction) as raised:
        execute_block(ledger.store, ledger.root, ledger.context(gas_limit=100_000), transactions)
    assert raised.value.index == 1
    assert raised.value.tx_hash == transactions[1].hash
    assert ledger.call(counter, selector("count()")) == word(0)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"chain_id": CHAIN_ID + 1}, "chain id"),
        ({"gas_limit": 20_000}, "intrinsic gas"),
        ({"value": 1}, "balance"),
    ],
)
def test_inapplicable_transactions_raise(
    ledger: Ledger, overrides: dict[str, int], reason: str
) -> None:
    tx = ledger.tx(READER, b"", **overrides)
    with pytest.raises(InapplicableTransaction, match=reason) as raised:
        execute_block(ledger.store, ledger.root, ledger.context(), [tx])
    assert isinstance(raised.value, ExecutionError)
    assert raised.value.index == 0


def test_init_code_above_eip_3860s_limit_is_inapplicable(ledger: Ledger) -> None:
    # Admission refuses it (chain.validation.OversizeInitCode); a block that holds one anyway
    # is refused as a whole, instead of py-evm's OutOfGas escaping execute_block.
    too_long = ledger.tx(None, b"\x00" * 49_153, gas_limit=10_000_000)
    with pytest.raises(InapplicableTransaction, match="EIP-3860") as raised:
        execute_block(ledger.store, ledger.root, ledger.context(), [too_long])
    assert raised.value.index == 0
    (receipt,) = ledger.run([ledger.tx(None, b"\x00" * 49_152, gas_limit=10_000_000)]).receipts
    assert receipt.status == 1


def test_value_transfer_from_a_funded_account() -> None:
    key = PrivateKey.generate()
    ledger = Ledger({Address(key.public_key.address): AccountAlloc(balance=1_000)})
    ledger.key = key
    (receipt,) = ledger.run([ledger.tx(READER, b"", value=400, gas_limit=21_000)]).receipts
    assert receipt.status == 1 and receipt.gas_used == 21_000
    # Gas is free: the sender paid exactly the value.
    assert balance_of(ledger, READER) == 400
    assert balance_of(ledger, ledger.sender) == 600


def test_unknown_state_root_and_malformed_context_raise(ledger: Ledger) -> None:
    with pytest.raises(ExecutionError, match="not in the state store"):
        execute_block(ledger.store, Hash32(b"\x01" * 32), ledger.context(), [])
    with pytest.raises(ExecutionError, match="state root"):
        execute_block(ledger.store, Hash32(b"\x01"), ledger.context(), [])
    bad_proposer = dataclasses.replace(ledger.context(), proposer=Address(b"\x01" * 19))
    with pytest.raises(ExecutionError, match="proposer"):
        execute_block(ledger.store, ledger.root, bad_proposer, [])
    with pytest.raises(ExecutionError, match="sender"):
        call(ledger.store, ledger.root, ledger.context(), sender=Address(b""), to=None, data=b"")
    with pytest.raises(ExecutionError, match="intrinsic"):
        call(ledger.store, ledger.root, ledger.context(), sender=READER, to=READER, data=b"", gas=1)


def test_empty_block_keeps_the_state_root(ledger: Ledger) -> None:
    result = ledger.run([])
    assert result.receipts == ()
    assert result.state_root == EMPTY_STATE_ROOT == ledger.root


def test_same_inputs_same_outputs(ledger: Ledger) -> None:
    anchor = ledger.deploy("Anchor")
    counter = ledger.deploy("Counter", word(1))
    transactions = [
        ledger.tx(anchor, selector("anchor(bytes32)") + sm3(b"%d" % i)) for i in range(20)
    ]
    transactions += [ledger.tx(counter, selector("fail()")), ledger.tx(None, b"\x60\x00")]
    runs = [
        execute_block(dict(ledger.store), ledger.root, ledger.context(), transactions)
        for _ in range(2)
    ]
    assert runs[0].state_root == runs[1].state_root
    assert runs[0].receipts == runs[1].receipts
    assert dict(runs[0].writes) == dict(runs[1].writes)


def test_genesis_alloc_is_readable_by_call() -> None:
    counter_code = load_artifact("Counter").deployed_bytecode
    contract = Address(b"\x0c" * 20)
    funded = Address(b"\x0f" * 20)
    ledger = Ledger(
        {
            contract: AccountAlloc(code=counter_code, storage={0: 41}),
            funded: AccountAlloc(balance=10**18),
        }
    )
    assert ledger.root != EMPTY_STATE_ROOT
    assert ledger.call(contract, selector("count()")) == word(41)
    ledger.run([ledger.tx(contract, selector("increment()"))])
    assert ledger.call(contract, selector("count()")) == word(42)
    assert balance_of(ledger, funded) == 10**18
    assert genesis_state({contract: AccountAlloc(code=counter_code, storage={0: 41})}) == (
        genesis_state({contract: AccountAlloc(code=counter_code, storage={0: 41})})
    )


def test_state_reads_return_what_execution_wrote() -> None:
    key = PrivateKey.generate()
    ledger = Ledger({Address(key.public_key.address): AccountAlloc(balance=1_000)})
    ledger.key = key
    counter = ledger.deploy("Counter", word(5))
    root_after_deploy = ledger.root
    ledger.run([ledger.tx(counter, selector("increment()"))])
    ledger.run([ledger.tx(READER, b"", value=400, gas_limit=21_000)])

    runtime = load_artifact("Counter").deployed_bytecode
    assert code_at(ledger.store, ledger.root, counter) == runtime
    assert storage_at(ledger.store, ledger.root, counter, 0) == 6
    assert storage_at(ledger.store, root_after_deploy, counter, 0) == 5
    assert storage_at(ledger.store, ledger.root, counter, 1) == 0
    contract = account_at(ledger.store, ledger.root, counter)
    assert contract.code_hash == keccak(runtime)
    assert contract.storage_root != EMPTY_STATE_ROOT
    # EIP-161: a created contract starts at nonce 1.
    assert contract.nonce == 1 and contract.balance == 0

    sender = account_at(ledger.store, ledger.root, ledger.sender)
    assert sender == AccountInfo(nonce=3, balance=600)
    assert sender.code_hash == EMPTY_CODE_HASH and sender.storage_root == EMPTY_STATE_ROOT
    assert account_at(ledger.store, ledger.root, READER).balance == 400
    assert balance_of(ledger, READER) == 400
    assert account_at(ledger.store, root_after_deploy, READER) == AccountInfo()
    assert code_at(ledger.store, ledger.root, READER) == b""
    assert account_at(ledger.store, EMPTY_STATE_ROOT, READER) == AccountInfo()


def test_state_reads_reject_bad_input_and_report_missing_nodes(ledger: Ledger) -> None:
    counter = ledger.deploy("Counter", word(5))
    with pytest.raises(ExecutionError, match="state root"):
        account_at(ledger.store, Hash32(b"\x01"), counter)
    with pytest.raises(ExecutionError, match="address"):
        code_at(ledger.store, ledger.root, Address(b"\x01" * 19))
    with pytest.raises(ExecutionError, match="slot"):
        storage_at(ledger.store, ledger.root, counter, 2**256)
    with pytest.raises(StorageError):
        account_at(ledger.store, Hash32(b"\x01" * 32), counter)
    code_hash = account_at(ledger.store, ledger.root, counter).code_hash
    without_code = {k: v for k, v in ledger.store.items() if k != code_hash}
    with pytest.raises(StorageError):
        code_at(without_code, ledger.root, counter)
    storage_root = account_at(ledger.store, ledger.root, counter).storage_root
    without_storage = {k: v for k, v in ledger.store.items() if k != storage_root}
    with pytest.raises(StorageError):
        storage_at(without_storage, ledger.root, counter, 0)


@pytest.mark.parametrize(
    "alloc",
    [
        {Address(b"\x01" * 19): AccountAlloc()},
        {Address(b"\x01" * 20): AccountAlloc(balance=-1)},
        {Address(b"\x01" * 20): AccountAlloc(storage={2**256: 1})},
        {Address(b"\x01" * 20): AccountAlloc(storage={1: 2**256})},
    ],
)
def test_genesis_rejects_bad_alloc(alloc: Mapping[Address, AccountAlloc]) -> None:
    with pytest.raises(GenesisError):
        genesis_state(alloc)


def test_call_changes_nothing_and_estimate_gas_is_tight(ledger: Ledger) -> None:
    counter = ledger.deploy("Counter", word(0))
    root = ledger.root
    size = len(ledger.store)
    increment = selector("increment()")
    result = call(ledger.store, root, ledger.context(), sender=READER, to=counter, data=increment)
    assert result.success and result.gas_used > 21_000
    assert ledger.call(counter, selector("count()")) == word(0)
    assert len(ledger.store) == size

    estimate = estimate_gas(
        ledger.store, root, ledger.context(), sender=READER, to=counter, data=increment
    )
    assert estimate >= result.gas_used
    ok = call(
        ledger.store,
        root,
        ledger.context(),
        sender=READER,
        to=counter,
        data=increment,
        gas=estimate,
    )
    short = call(
        ledger.store,
        root,
        ledger.context(),
        sender=READER,
        to=counter,
        data=increment,
        gas=estimate - 1,
    )
    assert ok.success and not short.success

    with pytest.raises(CallReverted) as raised:
        estimate_gas(
            ledger.store, root, ledger.context(), sender=READER, to=counter, data=selector("fail()")
        )
    assert b"Counter: always fails" in raised.value.output


def test_a_reused_call_state_answers_as_a_fresh_one(ledger: Ledger) -> None:
    counter = ledger.deploy("Counter", word(0))
    anchor = ledger.deploy("Anchor")
    reused = CallState(ledger.store, ledger.root, ledger.context())
    requests = [
        (counter, selector("increment()")),
        (counter, selector("count()")),
        (anchor, selector("anchor(bytes32)") + sm3(b"root")),
        (anchor, selector("total()")),
        (counter, selector("fail()")),
        (None, load_artifact("Anchor").bytecode),
    ]
    # Twice over: warm accounts and slots, nonces and created code must not leak between calls.
    for to, data in requests * 2:
        fresh = call(ledger.store, ledger.root, ledger.context(), sender=READER, to=to, data=data)
        assert reused.call(sender=READER, to=to, data=data) == fresh
    fresh_estimate = estimate_gas(
        ledger.store, ledger.root, ledger.context(), sender=READER, to=anchor, data=requests[2][1]
    )
    assert reused.estimate_gas(sender=READER, to=anchor, data=requests[2][1]) == fresh_estimate


def test_sm3_precompile_direct_and_from_solidity(ledger: Ledger) -> None:
    for data in (b"", b"abc", bytes(range(256)) * 3):
        result = call(
            ledger.store, ledger.root, ledger.context(), sender=READER, to=SM3_PRECOMPILE, data=data
        )
        assert result.success and result.output == sm3(data)
    gm = ledger.deploy("GmPrecompiles")
    data = b"lianxin precompile test"
    arguments = word(32) + word(len(data)) + data + bytes(-len(data) % 32)
    assert ledger.call(gm, selector("sm3(bytes)") + arguments) == sm3(data)


def test_sm2_verify_precompile(ledger: Ledger) -> None:
    signer = PrivateKey.generate()
    public_key = signer.public_key.to_bytes()
    message = b"electronic license 1.2.156.3005.2"
    signature = signer.sign(message)
    custom_id = b"department-42"
    custom_signature = signer.sign(message, custom_id)
    tampered = message[:-1] + b"3"

    def verify_direct(payload: bytes) -> bytes:
        result = call(
            ledger.store,
            ledger.root,
            ledger.context(),
            sender=READER,
            to=SM2_VERIFY_PRECOMPILE,
            data=payload,
        )
        assert result.success  # never reverts, even on garbage
        return result.output

    assert verify_direct(encode_bytes_args(public_key, message, signature, b"")) == word(1)
    assert verify_direct(
        encode_bytes_args(public_key, message, custom_signature, custom_id)
    ) == word(1)
    assert verify_direct(encode_bytes_args(public_key, tampered, signature, b"")) == word(0)
    assert verify_direct(encode_bytes_args(public_key, message, custom_signature, b"")) == word(0)
    assert verify_direct(encode_bytes_args(b"\x04" + bytes(64), message, signature, b"")) == word(0)
    assert verify_direct(encode_bytes_args(public_key, message, b"\x30\x00", b"")) == word(0)
    assert verify_direct(b"") == word(0)
    assert verify_direct(word(2**200) * 4) == word(0)

    gm = ledger.deploy("GmPrecompiles")
    verify = selector("sm2Verify(bytes,bytes,bytes,bytes)")
    good = encode_bytes_args(public_key, message, signature, b"")
    bad = encode_bytes_args(public_key, tampered, signature, b"")
    assert ledger.call(gm, verify + good) == word(1)
    assert ledger.call(gm, verify + bad) == word(0)

    record = selector("verifyAndRecord(bytes,bytes,bytes,bytes)")
    result = ledger.run([ledger.tx(gm, record + good), ledger.tx(gm, record + bad)])
    event_topic = keccak(text="Verified(bytes32,bool)")
    for receipt, valid, signed in zip(result.receipts, (1, 0), (message, tampered), strict=True):
        assert receipt.status == 1
        (log,) = receipt.logs
        assert log.topics == (event_topic, sm3(signed))
        assert log.data == word(valid)
        assert receipt.output == word(valid)


def test_precompile_out_of_gas_fails_the_call(ledger: Ledger) -> None:
    result = call(
        ledger.store,
        ledger.root,
        ledger.context(),
        sender=READER,
        to=SM2_VERIFY_PRECOMPILE,
        data=b"",
        gas=21_000 + 2_999,
    )
    assert not result.success
