"""web3.py's own JSON-RPC conformance suites (``web3._utils.module_testing``: the web3, net and
eth modules, as web3.py runs them against geth) against a dev chain's node process.

The fixtures build the chain web3.py's geth fixture holds: the test contracts deployed with
``eth_sendTransaction`` from a dev account, a transaction with a log, an empty block and a
block with a plain transfer. As geth's runs start every test from that fixture chain, every
test here starts from the same head: the chain goes back to it (``evm_revert``) before each
test, so no test sees blocks another one made, whichever order or worker runs them.

Tests that cannot pass here are marked ``xfail(strict=True)`` (an unexpected pass fails the
run), grouped by cause below: signing with secp256k1, SM2 signatures, fees, automine, a
client-side fault (not strict: the client's libraries may mend it), the geth fixture's chain
id. The suites are web3.py's of the version the test dependencies pin (pyproject.toml), so
the list holds for them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from compat_harness import RunningDevChain
from eth_typing import ChecksumAddress
from eth_utils import to_bytes
from eth_utils.toolz import identity
from hexbytes import HexBytes
from web3 import Web3
from web3._utils.contract_sources.contract_data.emitter_contract import EMITTER_CONTRACT_DATA
from web3._utils.contract_sources.contract_data.math_contract import MATH_CONTRACT_DATA
from web3._utils.contract_sources.contract_data.offchain_lookup import OFFCHAIN_LOOKUP_DATA
from web3._utils.contract_sources.contract_data.panic_errors_contract import (
    PANIC_ERRORS_CONTRACT_DATA,
)
from web3._utils.contract_sources.contract_data.revert_contract import REVERT_CONTRACT_DATA
from web3._utils.contract_sources.contract_data.storage_contract import STORAGE_CONTRACT_DATA
from web3._utils.module_testing import EthModuleTest, NetModuleTest, Web3ModuleTest
from web3._utils.module_testing.utils import RequestMocker
from web3.contract import Contract
from web3.types import BlockData, RPCEndpoint

# -- why a test cannot pass here (one reason per cause) ------------------------------------------

SECP256K1_SIGNING = (
    "signs a transaction locally with an eth_account (secp256k1) key and sends it raw; the "
    "chain takes SM2-signed transactions only and refuses it with -32010 "
    "(docs/ethereum-compat.md, 'Keys held by the client')"
)
SECP256K1_RECOVERY = (
    "recovers the signer of eth_signTransaction's raw transaction with secp256k1 "
    "(w3.eth.account.recover_transaction); the node signs with SM2 and answers the raw "
    "transaction as anvil does, not geth's {raw, tx} (docs/ethereum-compat.md, 'The dev chain "
    "holds its accounts unlocked')"
)
SM2_SIGNATURE = (
    "expects a 65-byte secp256k1 signature; the node's dev accounts sign with SM2, a DER "
    "signature of about 71 bytes (docs/ethereum-compat.md, 'The dev chain holds its accounts "
    "unlocked')"
)
FEE_FIELDS = (
    "expects the transaction object to show the gasPrice / maxFeePerGas / "
    "maxPriorityFeePerGas the request named; a ledger transaction carries no fee field and "
    "is shown as type 0 with gasPrice 0 (docs/ethereum-compat.md, 'Fees')"
)
NOTHING_CHARGED = (
    "expects fees to be paid (a receipt's effectiveGasPrice above 0, the miner's balance "
    "growing); nothing is charged or rewarded on this chain (docs/ethereum-compat.md, 'Fees')"
)
AUTOMINE = (
    "expects the sent transaction to be still pending (to replace or modify it, or to find "
    "no receipt yet); eth_sendTransaction answers once its block is committed, as Hardhat's "
    "automine (docs/ethereum-compat.md), and a ledger transaction has no per-account nonce "
    "that a replacement could reuse"
)
ENS_CLIENT_FAULT = (
    "fails in the client before any request: web3.py 7.16's ENS name normalisation passes "
    "a list to pyunormalize 18's NFC, which takes a str (AttributeError)"
)
GETH_FIXTURE_CHAIN_ID = (
    "asserts the chain id of web3.py's geth fixture genesis (131277322940537); "
    "test_web3_plain.py checks eth_chainId against this chain's"
)
ETH_TESTER_ERROR_TYPE = (
    "expects Web3ValueError, which only eth-tester raises: a node's JSON-RPC error reaches "
    "web3.py as Web3RPCError (the node refuses the document with -32602 and the message the "
    "test matches; web3.py's own geth run marks this test xfail too)"
)

CLIENT_FAULTS = frozenset({ENS_CLIENT_FAULT})
"""Causes in the client's own libraries, not in the node: not strict, since a release of
those libraries may mend them whatever the node does."""

WEB3_MODULE_XFAILS: dict[str, tuple[str, ...]] = {
    ENS_CLIENT_FAULT: ("test_solidity_keccak_ens",),
}
ETH_MODULE_XFAILS: dict[str, tuple[str, ...]] = {
    SECP256K1_SIGNING: (
        "test_eth_send_raw_transaction",
        "test_sign_and_send_raw_middleware",
        "test_sign_authorization_send_raw_and_send_set_code_transactions",
    ),
    SECP256K1_RECOVERY: (
        "test_eth_sign_transaction_legacy",
        "test_eth_sign_transaction",
        "test_eth_sign_transaction_hex_fees",
    ),
    SM2_SIGNATURE: ("test_eth_sign", "test_eth_sign_typed_data"),
    FEE_FIELDS: (
        "test_eth_send_transaction_legacy",
        "test_eth_send_transaction",
        "test_eth_send_transaction_with_nonce",
        "test_eth_send_transaction_default_fees",
        "test_eth_send_transaction_hex_fees",
        "test_eth_send_transaction_no_max_fee",
        "test_gas_price_from_strategy_bypassed_for_dynamic_fee_txn",
        "test_gas_price_strategy_hex_value",
    ),
    NOTHING_CHARGED: (
        "test_eth_get_balance_with_block_identifier",
        "test_eth_get_transaction_receipt_mined",
        "test_eth_wait_for_transaction_receipt_mined",
    ),
    AUTOMINE: (
        "test_eth_replace_transaction_legacy",
        "test_eth_replace_transaction",
        "test_eth_replace_transaction_underpriced",
        "test_eth_replace_transaction_gas_price_defaulting_minimum",
        "test_eth_replace_transaction_gas_price_defaulting_strategy_higher",
        "test_eth_replace_transaction_gas_price_defaulting_strategy_lower",
        "test_eth_modify_transaction_legacy",
        "test_eth_modify_transaction",
        "test_eth_get_transaction_receipt_unmined",
        "test_eth_wait_for_transaction_receipt_unmined",
    ),
    ENS_CLIENT_FAULT: (
        "test_eth_get_balance_with_ens_name",
        "test_eth_get_storage_at_ens_name",
        "test_eth_get_transaction_count_ens_name",
        "test_eth_get_code_ens_address",
        "test_eth_sign_ens_names",
        "test_eth_sign_transaction_ens_names",
    ),
    GETH_FIXTURE_CHAIN_ID: ("test_eth_chain_id",),
    ETH_TESTER_ERROR_TYPE: ("test_invalid_eth_sign_typed_data",),
}

_Suite = TypeVar("_Suite", bound=type)


def expected_failures(
    suite: type, xfails: dict[str, tuple[str, ...]]
) -> Callable[[_Suite], _Suite]:
    """A class decorator marking the named tests of ``suite`` ``xfail(strict=True)`` with
    their reason, in the subclass only (``suite``'s functions keep their marks)."""

    def mark(cls: _Suite) -> _Suite:
        for reason, names in xfails.items():
            for name in names:
                test = getattr(suite, name)

                @functools.wraps(test)
                def wrapper(*args: Any, _test: Any = test, **kwargs: Any) -> Any:
                    return _test(*args, **kwargs)

                # wraps copied the parametrize marks; the list is a new one.
                wrapper.pytestmark = [  # type: ignore[attr-defined]
                    *getattr(test, "pytestmark", []),
                    pytest.mark.xfail(strict=reason not in CLIENT_FAULTS, reason=reason),
                ]
                setattr(cls, name, wrapper)
        return cls

    return mark


# -- the chain the suites expect -----------------------------------------------------------------

SECP256K1_KEY = "0x" + "58" * 32
"""An Ethereum (secp256k1) private key, for the tests that sign locally with eth_account: the
chain holds no account of this kind and refuses what it signs."""

LOG_DOUBLE_WITH_INDEX = 9
"""The emitter contract's ``LogDoubleWithIndex`` event (its ``logDouble`` selector enum)."""

CONTRACTS: dict[str, dict[str, Any]] = {
    "math": MATH_CONTRACT_DATA,
    "emitter": EMITTER_CONTRACT_DATA,
    "revert": REVERT_CONTRACT_DATA,
    "offchain_lookup": OFFCHAIN_LOOKUP_DATA,
    "panic_errors": PANIC_ERRORS_CONTRACT_DATA,
    "storage": STORAGE_CONTRACT_DATA,
}
"""The contracts web3.py's geth fixture deploys, by name."""


@dataclass
class ChainState:
    """What the fixtures put on the chain, as web3.py's geth fixture records it."""

    keyfile_account: ChecksumAddress
    """The dev account the suites send from (``keyfile_account_address``)."""
    addresses: dict[str, ChecksumAddress]
    """Contract name → address."""
    math_deploy_txn_hash: HexBytes
    txn_hash_with_log: HexBytes
    block_hash_with_log: HexBytes
    empty_block_hash: HexBytes
    mined_txn_hash: HexBytes
    block_with_txn_hash: HexBytes
    snapshot: str
    """``evm_snapshot`` of the head every test starts from."""


def _web3(dev_chain: RunningDevChain) -> Web3:
    return Web3(Web3.HTTPProvider(dev_chain.url, request_kwargs={"timeout": 60}))


def _deploy(w3: Web3, sender: ChecksumAddress, data: dict[str, Any]) -> tuple[str, HexBytes]:
    factory = w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
    tx_hash = factory.constructor().transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    assert receipt["status"] == 1 and receipt["contractAddress"] is not None
    return receipt["contractAddress"], tx_hash


def _rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(RPCEndpoint(method), list(params))
    assert "error" not in response, response
    return response["result"]


@pytest.fixture(scope="module")
def chain_state(dev_chain: RunningDevChain) -> ChainState:
    """The fixture chain, built from genesis: the contracts (from ``admin``), a log, an empty
    block (``evm_mine``), and a transfer in the head block."""
    dev_chain.back_to_genesis()
    w3 = _web3(dev_chain)
    coinbase, keyfile_account = w3.eth.accounts[:2]
    addresses: dict[str, ChecksumAddress] = {}
    deploy_hashes: dict[str, HexBytes] = {}
    for name, data in CONTRACTS.items():
        address, deploy_hashes[name] = _deploy(w3, coinbase, data)
        addresses[name] = w3.to_checksum_address(address)
    emitter = w3.eth.contract(address=addresses["emitter"], abi=EMITTER_CONTRACT_DATA["abi"])
    txn_hash_with_log = emitter.functions.logDouble(
        which=LOG_DOUBLE_WITH_INDEX, arg0=12345, arg1=54321
    ).transact({"from": coinbase})
    with_log = w3.eth.wait_for_transaction_receipt(txn_hash_with_log, timeout=60)
    _rpc(w3, "evm_mine")
    empty_block = w3.eth.get_block("latest")
    assert not empty_block["transactions"]
    mined_txn_hash = w3.eth.send_transaction(
        {"from": coinbase, "to": coinbase, "value": 1, "gas": 21000}
    )
    mined = w3.eth.wait_for_transaction_receipt(mined_txn_hash, timeout=60)
    return ChainState(
        keyfile_account=keyfile_account,
        addresses=addresses,
        math_deploy_txn_hash=deploy_hashes["math"],
        txn_hash_with_log=txn_hash_with_log,
        block_hash_with_log=with_log["blockHash"],
        empty_block_hash=empty_block["hash"],
        mined_txn_hash=mined_txn_hash,
        block_with_txn_hash=mined["blockHash"],
        snapshot=_rpc(w3, "evm_snapshot"),
    )


@pytest.fixture
def w3(dev_chain: RunningDevChain, chain_state: ChainState) -> Web3:
    """A new client per test (tests change its middleware and settings), on the fixture
    chain as it was before any test: the blocks earlier tests made are reverted."""
    client = _web3(dev_chain)
    assert _rpc(client, "evm_revert", chain_state.snapshot) is True
    chain_state.snapshot = _rpc(client, "evm_snapshot")
    return client


@pytest.fixture(scope="module", params=[lambda x: to_bytes(hexstr=x), identity])
def address_conversion_func(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """An address as bytes and as text (web3.py's fixture of the same name)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def request_mocker() -> type[RequestMocker]:
    return RequestMocker


@pytest.fixture
def skip_if_testrpc() -> Callable[[Web3], None]:
    """The node is not eth-tester: nothing to skip."""
    return lambda _w3: None


@pytest.fixture
def keyfile_account_address(chain_state: ChainState) -> ChecksumAddress:
    return chain_state.keyfile_account


@pytest.fixture
def keyfile_account_address_dual_type(chain_state: ChainState) -> Iterator[ChecksumAddress]:
    yield chain_state.keyfile_account


@pytest.fixture
def keyfile_account_pkey() -> str:
    return SECP256K1_KEY


def _contract(w3: Web3, chain_state: ChainState, name: str) -> Contract:
    return w3.eth.contract(address=chain_state.addresses[name], abi=CONTRACTS[name]["abi"])


@pytest.fixture
def math_contract(w3: Web3, chain_state: ChainState) -> Contract:
    return _contract(w3, chain_state, "math")


@pytest.fixture
def math_contract_deploy_txn_hash(chain_state: ChainState) -> HexBytes:
    return chain_state.math_deploy_txn_hash


@pytest.fixture
def math_contract_address(
    math_contract: Contract, address_conversion_func: Callable[[str], Any]
) -> Any:
    return address_conversion_func(math_contract.address)


@pytest.fixture
def emitter_contract(w3: Web3, chain_state: ChainState) -> Contract:
    return _contract(w3, chain_state, "emitter")


@pytest.fixture
def emitter_contract_address(
    emitter_contract: Contract, address_conversion_func: Callable[[str], Any]
) -> Any:
    return address_conversion_func(emitter_contract.address)


@pytest.fixture
def revert_contract(w3: Web3, chain_state: ChainState) -> Contract:
    return _contract(w3, chain_state, "revert")


@pytest.fixture
def offchain_lookup_contract(w3: Web3, chain_state: ChainState) -> Contract:
    return _contract(w3, chain_state, "offchain_lookup")


@pytest.fixture
def panic_errors_contract(w3: Web3, chain_state: ChainState) -> Contract:
    return _contract(w3, chain_state, "panic_errors")


@pytest.fixture
def storage_contract(w3: Web3, chain_state: ChainState) -> Contract:
    return _contract(w3, chain_state, "storage")


@pytest.fixture
def empty_block(w3: Web3, chain_state: ChainState) -> BlockData:
    return w3.eth.get_block(chain_state.empty_block_hash)


@pytest.fixture
def block_with_txn(w3: Web3, chain_state: ChainState) -> BlockData:
    return w3.eth.get_block(chain_state.block_with_txn_hash)


@pytest.fixture
def mined_txn_hash(chain_state: ChainState) -> HexBytes:
    return chain_state.mined_txn_hash


@pytest.fixture
def block_with_txn_with_log(w3: Web3, chain_state: ChainState) -> BlockData:
    return w3.eth.get_block(chain_state.block_hash_with_log)


@pytest.fixture
def txn_hash_with_log(chain_state: ChainState) -> HexBytes:
    return chain_state.txn_hash_with_log


# -- the suites ---------------------------------------------------------------------------------


@expected_failures(Web3ModuleTest, WEB3_MODULE_XFAILS)
class TestLianxinWeb3Module(Web3ModuleTest):
    def _check_web3_client_version(self, client_version: str) -> None:  # type: ignore[override]
        assert client_version.startswith("lianxin/")


class TestLianxinNetModule(NetModuleTest):
    pass


@expected_failures(EthModuleTest, ETH_MODULE_XFAILS)
class TestLianxinEthModule(EthModuleTest):
    pass
