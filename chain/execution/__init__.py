"""EVM execution of ledger transactions: the one package of the repository that imports py-evm.

Modules
    ``model`` (context, accounts, results, errors), ``precompiles`` (SM3, SM2 verify and their
    gas), ``evm`` (py-evm configured for the ledger), ``state`` (genesis and state reads),
    ``block`` (block execution), ``calls`` (read-only calls, gas estimation and access
    lists), ``simulation`` (simulated blocks of calls, ``eth_simulateV1``), ``keccak`` (the
    fastest installed Keccak backend for py-evm and the trie). Import from
    ``chain.execution`` itself.

What runs
    py-evm's Cancun rules (``CancunState`` / ``CancunComputation``), the fork matching the
    ``evmVersion`` "cancun" our contracts are compiled for (``scripts/compile_contracts.js``).
    py-evm is configured, not patched: the computation class is configured with two extra
    precompiles, and one method of the transaction executor is overridden to place created
    contracts at :func:`contract_address` (Ethereum's sender/EVM-nonce address, so that
    Ethereum clients know a deployment's address from its transaction). The state class of
    read-only calls also overrides two EIP-2929 methods to record what an access-list call
    touches (:class:`~chain.execution.calls.CallExecutionState`). The state class of
    simulations charges no fee whatever BASEFEE reads, takes BLOBBASEFEE per simulated block,
    and its computation logs value transfers on request
    (:class:`~chain.execution.simulation.SimulationState`).

Hashes
    The state root is py-evm's Keccak Merkle-Patricia trie root, and inside the EVM Keccak
    stays Keccak (KECCAK256, storage slots, ABI selectors, event topics), so standard Solidity
    and web3 tooling work unchanged. Everything the chain itself commits to (tx, receipt and
    block hashes, Merkle roots) is SM3; contracts reach SM3 and SM2 through the precompiles.

Gas
    Gas bounds work; it is not money. Gas price and base fee are 0, so an account needs no
    balance to transact. A transaction whose ``gas_limit`` exceeds the gas left in the block,
    whose ``gas_limit`` is below its intrinsic gas, whose ``value`` exceeds the sender's
    balance, or whose chain id differs from the block's is not applicable: a committed block
    must not contain it, so :func:`execute_block` raises :class:`InapplicableTransaction` and
    the proposer must leave it out. A transaction that reverts or runs out of gas is applied:
    its receipt has status 0, no logs, and its gas counts against the block.

Block environment
    ``COINBASE`` is the proposer, ``NUMBER`` the height, ``TIMESTAMP`` the block time in whole
    seconds, ``PREVRANDAO`` and ``BLOCKHASH`` are 0 (no randomness and no header history inside
    the EVM), ``CHAINID`` the ledger chain id, ``BASEFEE`` and ``GASPRICE`` 0.

Storage
    Execution never writes anywhere. State is read through a :class:`KeyValueReader`; every
    trie node and code blob that execution produces is captured and returned as ``writes``
    (content-addressed by Keccak: nothing is ever deleted), for the node to store in the same
    transaction as the block. :func:`account_at`, :func:`code_at` and :func:`storage_at` read
    one account, its code or one storage slot at any stored state root through py-evm's own
    account database, so no other module walks the trie.

Precompiles (addresses outside Ethereum's 0x01-0x11 range)
    ``SM3_PRECOMPILE`` (0x...5a03): input any bytes, output their 32-byte SM3 digest.
    Gas ``SM3_BASE_GAS + SM3_WORD_GAS`` per 32-byte input word (rounded up).

    ``SM2_VERIFY_PRECOMPILE`` (0x...5a02): input ``abi.encode(bytes publicKey, bytes message,
    bytes signature, bytes signerId)``, where ``publicKey`` is 65 bytes (0x04 || x || y),
    ``signature`` is DER, and an empty ``signerId`` means the default 1234567812345678.
    Output a 32-byte word: 1 if the signature verifies, else 0. An invalid signature or a
    malformed input never reverts; it returns 0 and the gas is consumed. Gas
    ``SM2_VERIFY_BASE_GAS + SM2_VERIFY_WORD_GAS`` per 32-byte input word (rounded up).

    Ethereum's precompiles (0x01-0x0a) behave as in Cancun, but ECRECOVER, ECMUL, ECPAIRING
    and BLAKE2F charge a surcharge on top of Ethereum's gas, priced from their measured cost
    in py-evm (see :mod:`chain.execution.precompiles`).
"""

from chain.execution.block import execute_block
from chain.execution.calls import CallState, call, estimate_gas
from chain.execution.evm import contract_address, intrinsic_gas, sender_address
from chain.execution.keccak import KECCAK_BACKEND
from chain.execution.model import (
    CREATE_ADDRESS_PREFIX,
    EMPTY_CODE_HASH,
    EMPTY_STATE_ROOT,
    AccessListEntry,
    AccessListResult,
    AccessListTooLong,
    AccountAlloc,
    AccountInfo,
    BlockContext,
    BlockExecution,
    BlockOverrides,
    BlockStateCalls,
    CallInterrupted,
    CallResult,
    CallReverted,
    InapplicableTransaction,
    Refusal,
    SimulatedBlock,
    SimulatedCall,
    SimulatedCallResult,
    SimulationRefused,
    StateUpdate,
)
from chain.execution.overrides import AccountOverride, StateOverrides
from chain.execution.precompiles import (
    SM2_VERIFY_BASE_GAS,
    SM2_VERIFY_PRECOMPILE,
    SM2_VERIFY_WORD_GAS,
    SM3_BASE_GAS,
    SM3_PRECOMPILE,
    SM3_WORD_GAS,
)
from chain.execution.simulation import (
    MAX_BLOCKS,
    MAX_CALLS,
    TRANSFER_ADDRESS,
    TRANSFER_TOPIC,
    simulate,
)
from chain.execution.state import account_at, code_at, genesis_state, storage_at

__all__ = [
    "CREATE_ADDRESS_PREFIX",
    "EMPTY_CODE_HASH",
    "EMPTY_STATE_ROOT",
    "KECCAK_BACKEND",
    "MAX_BLOCKS",
    "MAX_CALLS",
    "SM2_VERIFY_BASE_GAS",
    "SM2_VERIFY_PRECOMPILE",
    "SM2_VERIFY_WORD_GAS",
    "SM3_BASE_GAS",
    "SM3_PRECOMPILE",
    "SM3_WORD_GAS",
    "TRANSFER_ADDRESS",
    "TRANSFER_TOPIC",
    "AccessListEntry",
    "AccessListResult",
    "AccessListTooLong",
    "AccountAlloc",
    "AccountInfo",
    "AccountOverride",
    "BlockContext",
    "BlockExecution",
    "BlockOverrides",
    "BlockStateCalls",
    "CallInterrupted",
    "CallResult",
    "CallReverted",
    "CallState",
    "InapplicableTransaction",
    "Refusal",
    "SimulatedBlock",
    "SimulatedCall",
    "SimulatedCallResult",
    "SimulationRefused",
    "StateOverrides",
    "StateUpdate",
    "account_at",
    "call",
    "code_at",
    "contract_address",
    "estimate_gas",
    "execute_block",
    "genesis_state",
    "intrinsic_gas",
    "sender_address",
    "simulate",
    "storage_at",
]
