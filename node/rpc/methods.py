"""The JSON-RPC methods: one table from method name to handler.

Handlers take the positional ``params`` list and return a JSON-ready value or raise
:class:`~node.rpc.errors.RpcError`. Work that may take long (EVM calls, gas estimation, log
queries, transaction admission with its SM2 verification) runs on the reader thread pool so
that the event loop keeps serving; quick indexed reads run inline. The handlers live in groups
(``eth_methods``, ``call_methods``, ``simulate_methods``, ``filter_methods``,
``lianxin_methods``, and ``dev_methods`` for a dev chain's accounts and test helpers) over one
shared :class:`~node.rpc.context.RpcContext`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from node.config import NodeConfig
from node.dev_accounts import DevAccounts
from node.ledger import Ledger
from node.mempool import Mempool
from node.rpc.call_methods import CallMethods
from node.rpc.context import RpcContext
from node.rpc.dev_methods import BlockMaker, DevClock, DevMethods
from node.rpc.eth_methods import CLIENT_VERSION, EthMethods
from node.rpc.filter_methods import FilterMethods
from node.rpc.lianxin_methods import LianxinMethods
from node.rpc.simulate_methods import SimulateMethods

__all__ = ["CLIENT_VERSION", "EXPENSIVE_METHODS", "Handler", "RpcApi"]

log = logging.getLogger(__name__)

Handler = Callable[[list[Any]], Awaitable[Any]]

EXPENSIVE_METHODS = frozenset(
    {
        "eth_call",
        "eth_estimateGas",
        "eth_createAccessList",
        "eth_simulateV1",
        "eth_getLogs",
        "eth_getFilterLogs",
        "eth_getFilterChanges",
        "eth_sendTransaction",
        "eth_signTransaction",
    }
)
"""Methods that run the EVM or scan the log index: each takes a token from the client's
rate-limit bucket (see :mod:`node.rpc.rate_limit`)."""


class RpcApi:
    """The handlers of every method, over one ledger and mempool."""

    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        config: NodeConfig,
        readers: Executor,
        *,
        peers: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        """``readers`` runs the slow handlers off the event loop. A configuration naming
        ``dev_accounts_dir`` opens the dev accounts (DevAccountsError unless the chain has a
        single validator)."""
        self.ledger = ledger
        self.mempool = mempool
        self.config = config
        self.context = RpcContext(ledger, mempool, config, readers, peers)
        self.dev_accounts = (
            None
            if config.dev_accounts_dir is None
            else DevAccounts.open(
                config.dev_accounts_dir,
                config.keystore_password().encode(),
                validators=len(ledger.genesis.validators),
            )
        )
        if self.dev_accounts is not None:
            log.warning(
                "dev chain: holding %d accounts unlocked from %s (eth_sendTransaction signs "
                "for them); never set dev_accounts_dir on a real chain",
                len(self.dev_accounts.accounts),
                config.dev_accounts_dir,
            )
        self.dev_clock = DevClock()
        """The dev producer's block clock (evm_increaseTime moves it)."""
        eth = EthMethods(self.context)
        calls = CallMethods(self.context)
        simulations = SimulateMethods(self.context, calls)
        filters = FilterMethods(self.context)
        lianxin = LianxinMethods(self.context)
        self.dev = DevMethods(self.context, eth, calls, self.dev_accounts, self.dev_clock)
        dev = self.dev
        self.table: dict[str, Handler] = {
            "web3_clientVersion": eth.web3_client_version,
            "net_version": eth.net_version,
            "net_listening": eth.net_listening,
            "net_peerCount": eth.net_peer_count,
            "eth_chainId": eth.eth_chain_id,
            "eth_blockNumber": eth.eth_block_number,
            "eth_syncing": eth.eth_syncing,
            "eth_accounts": dev.eth_accounts,
            "eth_gasPrice": eth.eth_gas_price,
            "eth_maxPriorityFeePerGas": eth.eth_max_priority_fee_per_gas,
            "eth_blobBaseFee": eth.eth_blob_base_fee,
            "eth_feeHistory": eth.eth_fee_history,
            "eth_getBlockByNumber": eth.eth_get_block_by_number,
            "eth_getBlockByHash": eth.eth_get_block_by_hash,
            "eth_getBlockTransactionCountByNumber": eth.eth_get_block_tx_count_by_number,
            "eth_getBlockTransactionCountByHash": eth.eth_get_block_tx_count_by_hash,
            "eth_getUncleCountByBlockHash": eth.eth_get_uncle_count_by_block_hash,
            "eth_getUncleCountByBlockNumber": eth.eth_get_uncle_count_by_block_number,
            "eth_getTransactionByHash": eth.eth_get_transaction_by_hash,
            "eth_getTransactionByBlockHashAndIndex": eth.eth_get_tx_by_block_hash_and_index,
            "eth_getTransactionByBlockNumberAndIndex": eth.eth_get_tx_by_block_number_and_index,
            "eth_getRawTransactionByHash": eth.eth_get_raw_transaction_by_hash,
            "eth_getRawTransactionByBlockHashAndIndex": eth.eth_get_raw_tx_by_block_hash_and_index,
            "eth_getRawTransactionByBlockNumberAndIndex": (
                eth.eth_get_raw_tx_by_block_number_and_index
            ),
            "eth_getBlockReceipts": eth.eth_get_block_receipts,
            "eth_getTransactionReceipt": eth.eth_get_transaction_receipt,
            "eth_sendRawTransaction": eth.eth_send_raw_transaction,
            "eth_sendTransaction": dev.eth_send_transaction,
            "eth_signTransaction": dev.eth_sign_transaction,
            "eth_sign": dev.eth_sign,
            "personal_sign": dev.personal_sign,
            "eth_signTypedData_v4": dev.eth_sign_typed_data_v4,
            "eth_signTypedData": dev.eth_sign_typed_data_v4,
            "evm_mine": dev.evm_mine,
            "evm_increaseTime": dev.evm_increase_time,
            "evm_setNextBlockTimestamp": dev.evm_set_next_block_timestamp,
            "evm_snapshot": dev.evm_snapshot,
            "evm_revert": dev.evm_revert,
            "eth_call": calls.eth_call,
            "eth_estimateGas": calls.eth_estimate_gas,
            "eth_createAccessList": calls.eth_create_access_list,
            "eth_simulateV1": simulations.eth_simulate_v1,
            "eth_getCode": eth.eth_get_code,
            "eth_getStorageAt": eth.eth_get_storage_at,
            "eth_getBalance": eth.eth_get_balance,
            "eth_getTransactionCount": eth.eth_get_transaction_count,
            "eth_getLogs": filters.eth_get_logs,
            "eth_newFilter": filters.eth_new_filter,
            "eth_newBlockFilter": filters.eth_new_block_filter,
            "eth_newPendingTransactionFilter": filters.eth_new_pending_transaction_filter,
            "eth_getFilterChanges": filters.eth_get_filter_changes,
            "eth_getFilterLogs": filters.eth_get_filter_logs,
            "eth_uninstallFilter": filters.eth_uninstall_filter,
            "lianxin_getTransactionProof": lianxin.lianxin_get_transaction_proof,
            "lianxin_getReceiptProof": lianxin.lianxin_get_receipt_proof,
            "lianxin_getBlockHeader": lianxin.lianxin_get_block_header,
            "lianxin_getValidators": lianxin.lianxin_get_validators,
            "lianxin_getConsensusStatus": lianxin.lianxin_get_consensus_status,
            "lianxin_getPeers": lianxin.lianxin_get_peers,
        }

    def attach_block_maker(self, maker: BlockMaker) -> None:
        """Give the evm_* test helpers the dev producer (a single-validator chain)."""
        self.dev.block_maker = maker

    def close(self) -> None:
        """Stop work started for the handlers (opening dev keystores)."""
        if self.dev_accounts is not None:
            self.dev_accounts.close()
