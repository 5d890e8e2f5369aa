"""A small JSON-RPC server that answers like a lianxin node, for the web3 integration tests.

It records every request, decodes and SM2-verifies each raw transaction with ``chain``, and
plays just enough of the Anchor contract (creation, ``anchor``, ``total``, the ``Anchored``
event) for web3 contract objects, receipts and logs to be exercised. It is not an EVM.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.crypto import keccak

from chain.crypto import PublicKey
from chain.crypto.sm3 import sm3
from chain.types import Transaction
from chain.validation import verify_transaction_signature

CHAIN_ID = 20231
GAS_ESTIMATE = 50_000
START_HEIGHT = 40
REVERTING_DATA = b"\xde\xad"
"""Call data for which ``eth_estimateGas`` answers "execution reverted"."""

ANCHOR_SELECTOR = function_signature_to_4byte_selector("anchor(bytes32)")
TOTAL_SELECTOR = function_signature_to_4byte_selector("total()")
ANCHORED_TOPIC = keccak(text="Anchored(bytes32,address,uint256)")


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _quantity(number: int) -> str:
    return hex(number)


class RpcFailure(Exception):
    """A JSON-RPC error object to answer with."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            self.error["data"] = data


@dataclass
class StubNode:
    """The node's state and the log of what clients asked."""

    height: int = START_HEIGHT
    requests: list[tuple[str, list[Any]]] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    refuse_with: RpcFailure | None = None
    """When set, every ``eth_sendRawTransaction`` is answered with this error."""
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    anchor_totals: dict[bytes, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def methods(self) -> list[str]:
        """The method names received, in order."""
        return [method for method, _ in self.requests]

    def handle(self, method: str, params: list[Any]) -> Any:
        with self.lock:
            self.requests.append((method, params))
            handler = getattr(self, "rpc_" + method, None)
            if handler is None:
                raise RpcFailure(-32601, f"method not found: {method}")
            return handler(*params)

    # -- chain --

    def rpc_eth_chainId(self) -> str:
        return _quantity(CHAIN_ID)

    def rpc_eth_blockNumber(self) -> str:
        return _quantity(self.height)

    def rpc_eth_gasPrice(self) -> str:
        return "0x0"

    def rpc_eth_maxPriorityFeePerGas(self) -> str:
        return "0x0"

    def rpc_eth_getBlockByNumber(self, block: str, full: bool) -> dict[str, Any]:
        number = self.height if block == "latest" else int(block, 16)
        return {
            "number": _quantity(number),
            "hash": _hex(sm3(number.to_bytes(8, "big"))),
            "parentHash": _hex(bytes(32)),
            "timestamp": _quantity(1_700_000_000 + number),
            "gasLimit": _quantity(30_000_000),
            "gasUsed": "0x0",
            "baseFeePerGas": "0x0",
            "extraData": "0x",
            "miner": _hex(bytes(20)),
            "transactions": [],
        }

    # -- execution --

    def rpc_eth_estimateGas(self, call: dict[str, Any], *_: Any) -> str:
        if call.get("data") == _hex(REVERTING_DATA):
            reason = abi_encode(["string"], ["not allowed"])
            raise RpcFailure(
                -32000, "execution reverted: not allowed", _hex(b"\x08\xc3\x79\xa0" + reason)
            )
        return _quantity(GAS_ESTIMATE)

    def rpc_eth_call(self, call: dict[str, Any], *_: Any) -> str:
        data = bytes.fromhex(call["data"][2:])
        if data[:4] == TOTAL_SELECTOR:
            contract = bytes.fromhex(call["to"][2:])
            return _hex(abi_encode(["uint256"], [self.anchor_totals.get(contract, 0)]))
        raise RpcFailure(-32000, "execution reverted")

    def rpc_eth_sendRawTransaction(self, raw: str) -> str:
        if self.refuse_with is not None:
            raise self.refuse_with
        tx = Transaction.decode(bytes.fromhex(raw[2:]))
        verify_transaction_signature(tx)
        if tx.chain_id != CHAIN_ID:
            raise RpcFailure(-32012, "wrong chain id")
        self.transactions.append(tx)
        self.height += 1
        self._execute(tx)
        return _hex(tx.hash)

    def _execute(self, tx: Transaction) -> None:
        sender = PublicKey.from_bytes(tx.public_key).address
        tx_hash = _hex(tx.hash)
        block = {
            "blockHash": _hex(sm3(self.height.to_bytes(8, "big"))),
            "blockNumber": _quantity(self.height),
            "transactionHash": tx_hash,
            "transactionIndex": "0x0",
        }
        contract_address = None
        logs = []
        if tx.to is None:
            contract_address = sm3(sender + tx.nonce)[-20:]
            self.anchor_totals[contract_address] = 0
        elif tx.data[:4] == ANCHOR_SELECTOR and tx.to in self.anchor_totals:
            (root,) = abi_decode(["bytes32"], tx.data[4:])
            self.anchor_totals[tx.to] += 1
            logs.append(
                {
                    **block,
                    "address": _hex(tx.to),
                    "topics": [_hex(ANCHORED_TOPIC), _hex(root), _hex(bytes(12) + sender)],
                    "data": _hex(abi_encode(["uint256"], [self.anchor_totals[tx.to]])),
                    "logIndex": _quantity(len(self.logs)),
                    "removed": False,
                }
            )
        self.logs.extend(logs)
        self.receipts[tx_hash] = {
            **block,
            "from": _hex(sender),
            "to": None if tx.to is None else _hex(tx.to),
            "contractAddress": None if contract_address is None else _hex(contract_address),
            "status": "0x1",
            "gasUsed": _quantity(21_000),
            "cumulativeGasUsed": _quantity(21_000),
            "effectiveGasPrice": "0x0",
            "logs": logs,
            "logsBloom": _hex(bytes(256)),
            "type": "0x0",
        }

    def rpc_eth_getTransactionReceipt(self, tx_hash: str) -> dict[str, Any] | None:
        return self.receipts.get(tx_hash)

    def rpc_eth_getLogs(self, log_filter: dict[str, Any]) -> list[dict[str, Any]]:
        address = log_filter.get("address")
        addresses = [address] if isinstance(address, str) else address
        return [
            log
            for log in self.logs
            if not addresses or log["address"] in [a.lower() for a in addresses]
        ]


class StubServer:
    """Serves a :class:`StubNode` over HTTP on an ephemeral localhost port."""

    def __init__(self, node: StubNode) -> None:
        self.node = node
        stub = node

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                response: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
                try:
                    response["result"] = stub.handle(request["method"], request.get("params") or [])
                except RpcFailure as failure:
                    response["error"] = failure.error
                body = json.dumps(response).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
