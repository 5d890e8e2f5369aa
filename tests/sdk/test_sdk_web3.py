"""web3.py against a stub node: transactions leave SM2-signed as eth_sendRawTransaction with
the fields web3 asked for, contracts, receipts, events and logs work unchanged, and refusals
raise TransactionRefused."""

from __future__ import annotations

from typing import Any

import pytest
from eth_typing import HexStr
from sdk_rpc_stub import (
    CHAIN_ID,
    GAS_ESTIMATE,
    REVERTING_DATA,
    START_HEIGHT,
    RpcFailure,
    StubServer,
)
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import Nonce, Wei

from chain.types import Transaction
from chain.validation import verify_transaction_signature
from contracts.artifacts import load_artifact
from sdk.account import Sm2Account
from sdk.errors import InvalidTransactionParams, RefusalReason, TransactionRefused
from sdk.transactions import DEFAULT_BLOCK_LIMIT_WINDOW, build_transaction, encode_raw
from sdk.web3_integration import (
    DEFAULT_GAS_MARGIN_PERCENT,
    Sm2Signer,
    attach_account,
    lianxin_web3,
)

RECIPIENT = Web3.to_checksum_address("0x" + "ab" * 20)
ROOT = bytes.fromhex("11" * 32)


@pytest.fixture
def w3(stub: StubServer, account: Sm2Account) -> Web3:
    return lianxin_web3(stub.url, account)


def sent(stub: StubServer) -> Transaction:
    """The one transaction the stub node received."""
    assert len(stub.node.transactions) == 1
    return stub.node.transactions[0]


def test_eth_accounts_is_the_signing_account_and_asks_no_node(
    w3: Web3, stub: StubServer, account: Sm2Account
) -> None:
    assert list(w3.eth.accounts) == [account.checksum_address]
    assert w3.eth.default_account == account.checksum_address
    assert "eth_accounts" not in stub.node.methods()


def test_send_transaction_goes_out_signed_and_raw(
    w3: Web3, stub: StubServer, account: Sm2Account
) -> None:
    tx_hash = w3.eth.send_transaction(
        {"to": RECIPIENT, "data": HexStr("0xc0ffee"), "value": Wei(5)}
    )
    assert "eth_sendTransaction" not in stub.node.methods()
    assert stub.node.methods().count("eth_sendRawTransaction") == 1
    tx = sent(stub)
    verify_transaction_signature(tx)
    assert tx.public_key == account.public_key_bytes
    assert (tx.chain_id, tx.to, tx.data, tx.value) == (
        CHAIN_ID,
        bytes.fromhex(RECIPIENT[2:]),
        b"\xc0\xff\xee",
        5,
    )
    assert tx.gas_limit == GAS_ESTIMATE + GAS_ESTIMATE * DEFAULT_GAS_MARGIN_PERCENT // 100
    assert tx.block_limit == START_HEIGHT + DEFAULT_BLOCK_LIMIT_WINDOW
    assert bytes(tx_hash) == tx.hash


def test_given_gas_and_nonce_are_kept_and_no_estimate_is_asked(w3: Web3, stub: StubServer) -> None:
    w3.eth.send_transaction({"to": RECIPIENT, "gas": 77_000, "nonce": Nonce(5)})
    tx = sent(stub)
    assert tx.gas_limit == 77_000
    assert tx.nonce == (5).to_bytes(32, "big")
    assert "eth_estimateGas" not in stub.node.methods()


def test_each_transaction_gets_its_own_random_nonce(w3: Web3, stub: StubServer) -> None:
    for _ in range(3):
        w3.eth.send_transaction({"to": RECIPIENT, "gas": 30_000})
    assert len({tx.nonce for tx in stub.node.transactions}) == 3


@pytest.mark.parametrize(
    "fees",
    [
        {"gasPrice": 10**9},
        {"maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9, "type": 2},
    ],
)
def test_fee_fields_are_ignored(w3: Web3, stub: StubServer, fees: dict[str, Any]) -> None:
    w3.eth.send_transaction({"to": RECIPIENT, "gas": 30_000, **fees})  # type: ignore[typeddict-item]
    assert sent(stub).gas_limit == 30_000


def test_chain_id_is_asked_once_and_no_fee_round_trips(w3: Web3, stub: StubServer) -> None:
    w3.eth.send_transaction({"to": RECIPIENT})
    w3.eth.send_transaction({"to": RECIPIENT})
    w3.eth.estimate_gas({"to": RECIPIENT})
    methods = stub.node.methods()
    assert methods.count("eth_chainId") == 1
    assert "eth_getBlockByNumber" not in methods
    assert "eth_gasPrice" not in methods


def test_block_number_is_fetched_for_each_transaction_when_max_age_is_zero(
    stub: StubServer, account: Sm2Account
) -> None:
    w3 = Web3(Web3.HTTPProvider(stub.url))
    attach_account(w3, account, block_limit_window=10, block_number_max_age=0)
    w3.eth.send_transaction({"to": RECIPIENT, "gas": 30_000})
    w3.eth.send_transaction({"to": RECIPIENT, "gas": 30_000})
    assert stub.node.methods().count("eth_blockNumber") == 2
    assert [tx.block_limit for tx in stub.node.transactions] == [
        START_HEIGHT + 10,
        START_HEIGHT + 1 + 10,
    ]


def test_contract_deploy_transact_call_events_and_logs(w3: Web3, account: Sm2Account) -> None:
    artifact = load_artifact("Anchor")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    deployed = w3.eth.wait_for_transaction_receipt(factory.constructor().transact(), timeout=5)
    assert deployed["status"] == 1
    anchor = w3.eth.contract(address=deployed["contractAddress"], abi=artifact.abi)

    receipt = w3.eth.wait_for_transaction_receipt(
        anchor.functions.anchor(ROOT).transact(), timeout=5
    )
    (event,) = anchor.events.Anchored().process_receipt(receipt)
    assert event["args"] == {"root": ROOT, "by": account.checksum_address, "count": 1}
    assert anchor.functions.total().call() == 1

    (logged,) = anchor.events.Anchored.get_logs(from_block=0)
    assert logged["args"]["root"] == ROOT
    (raw_log,) = w3.eth.get_logs({"address": anchor.address, "fromBlock": 0})
    assert bytes(raw_log["topics"][1]) == ROOT


def test_web3_built_transaction_with_fee_fields_can_be_sent(w3: Web3, stub: StubServer) -> None:
    artifact = load_artifact("Anchor")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact(), timeout=5)
    anchor = w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    built = anchor.functions.anchor(ROOT).build_transaction()
    assert built["maxFeePerGas"] == 0  # filled by web3 from the node's zero fees
    w3.eth.send_transaction(built)
    assert stub.node.transactions[-1].gas_limit == built["gas"]


def test_refusal_raises_transaction_refused_with_its_code(w3: Web3, stub: StubServer) -> None:
    stub.node.refuse_with = RpcFailure(-32016, "duplicate replay nonce", "0x1234")
    with pytest.raises(TransactionRefused) as refused:
        w3.eth.send_transaction({"to": RECIPIENT, "gas": 30_000})
    assert refused.value.code == -32016
    assert refused.value.reason is RefusalReason.DUPLICATE_NONCE
    assert refused.value.message == "duplicate replay nonce"
    assert refused.value.data == "0x1234"


def test_refusal_of_a_raw_transaction_raises_transaction_refused(
    w3: Web3, stub: StubServer, account: Sm2Account
) -> None:
    stub.node.refuse_with = RpcFailure(-32017, "sender not permitted")
    tx = build_transaction(chain_id=CHAIN_ID, to=None, data=b"", gas_limit=1, block_limit=99)
    with pytest.raises(TransactionRefused) as refused:
        w3.eth.send_raw_transaction(HexStr(encode_raw(account.sign_transaction(tx))))
    assert refused.value.reason is RefusalReason.NOT_PERMITTED


def test_other_node_errors_stay_web3_errors(w3: Web3, stub: StubServer) -> None:
    stub.node.refuse_with = RpcFailure(-32602, "invalid params")
    with pytest.raises(Web3RPCError) as error:
        w3.eth.send_transaction({"to": RECIPIENT, "gas": 30_000})
    assert not isinstance(error.value, TransactionRefused)


def test_reverting_estimate_raises_contract_logic_error(w3: Web3, stub: StubServer) -> None:
    with pytest.raises(ContractLogicError) as reverted:
        w3.eth.send_transaction({"to": RECIPIENT, "data": REVERTING_DATA})
    assert str(reverted.value.data).startswith("0x08c379a0")  # Error(string) revert data
    assert "eth_sendRawTransaction" not in stub.node.methods()


def test_another_sender_is_refused_before_anything_is_sent(w3: Web3, stub: StubServer) -> None:
    other = Sm2Account.generate()
    with pytest.raises(InvalidTransactionParams, match="not the signing account"):
        w3.eth.send_transaction({"from": other.checksum_address, "to": RECIPIENT, "gas": 1})
    assert set(stub.node.methods()) <= {"eth_chainId"}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"to": RECIPIENT, "chainId": CHAIN_ID + 1}, "chain id"),
        ({"to": RECIPIENT, "authorizationList": []}, "authorizationList"),
        ({"to": "0x1234"}, "20 bytes"),
        ({"to": RECIPIENT, "nonce": 2**256}, "nonce"),
        ({"to": RECIPIENT, "value": "ten"}, "value"),
    ],
)
def test_signer_refuses_params_it_cannot_map(
    w3: Web3, account: Sm2Account, params: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidTransactionParams, match=match):
        Sm2Signer(account).raw_transaction(w3, {"gas": 30_000, **params})
