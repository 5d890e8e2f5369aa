"""web3.py on lianxin: ordinary contract objects, transactions signed with SM2.

    w3 = lianxin_web3("http://127.0.0.1:8545", Sm2Account.from_keystore(data, password))
    anchor = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(anchor.constructor().transact())

The only module of ``sdk`` that imports web3. It reaches web3.py through its extension points
alone: a provider option (the node's chain id is cached, so web3's validation layer does not
ask for it before every call) and one middleware, :class:`Sm2SignerMiddleware`, which turns
``eth_sendTransaction`` into a signed ``eth_sendRawTransaction`` and answers ``eth_accounts``.

Gas bounds work but is not money here: the fee fields web3 fills for Ethereum
(``gasPrice``, ``maxFeePerGas``, ``maxPriorityFeePerGas``, ``type``, ``accessList``) are
accepted and ignored, and web3's fee and gas-buffer layers are removed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.middleware import Web3Middleware
from web3.types import MakeRequestFn, RPCEndpoint, RPCResponse, TxParams, Wei

from chain.primitives import ADDRESS_SIZE, HASH_SIZE
from sdk.account import Sm2Account
from sdk.errors import REFUSAL_CODES, InvalidTransactionParams, TransactionRefused
from sdk.transactions import (
    DEFAULT_BLOCK_LIMIT_WINDOW,
    block_limit_for,
    build_transaction,
    encode_raw,
)

DEFAULT_REQUEST_TIMEOUT = 10.0
"""Seconds to wait for one HTTP answer from the node."""

DEFAULT_GAS_MARGIN_PERCENT = 20
"""How much gas to allow above the node's ``eth_estimateGas`` when a transaction names none."""

DEFAULT_BLOCK_NUMBER_MAX_AGE = 1.0
"""Seconds a fetched block number is reused for ``block_limit``; the window of hundreds of
blocks absorbs the staleness, and a burst of transactions saves a round trip each."""

SIGNER_MIDDLEWARE_NAME = "lianxin_sm2_signer"
"""The name of :class:`Sm2SignerMiddleware` in ``w3.middleware_onion``."""

REPLACED_DEFAULT_MIDDLEWARE = ("gas_price_strategy", "gas_estimate")
"""web3's default layers that fill Ethereum fees and buffer gas on ``eth_sendTransaction``;
the signer does both jobs for lianxin, so they only cost round trips."""

_MAPPED_FIELDS = frozenset({"from", "to", "data", "value", "gas", "nonce", "chainId"})
_IGNORED_FIELDS = frozenset(
    {"gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "type", "accessList"}
)


def lianxin_web3(
    url: str,
    account: Sm2Account,
    *,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    block_limit_window: int = DEFAULT_BLOCK_LIMIT_WINDOW,
    gas_margin_percent: int = DEFAULT_GAS_MARGIN_PERCENT,
) -> Web3:
    """Return a web3.py client of the node at ``url`` (HTTP JSON-RPC) that sends every
    transaction signed by ``account``, which is also ``w3.eth.default_account``.

    Contract objects, ``transact()``, ``call()``, receipts, events and logs work as on
    Ethereum. A transaction the node refuses raises :class:`sdk.errors.TransactionRefused`.
    """
    provider = HTTPProvider(
        url,
        request_kwargs={"timeout": request_timeout},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
        # The chain id never changes; no block-based threshold applies to it.
        request_cache_validation_threshold=None,
    )
    w3 = Web3(provider)
    attach_account(
        w3,
        account,
        block_limit_window=block_limit_window,
        gas_margin_percent=gas_margin_percent,
    )
    return w3


def attach_account(
    w3: Web3,
    account: Sm2Account,
    *,
    block_limit_window: int = DEFAULT_BLOCK_LIMIT_WINDOW,
    gas_margin_percent: int = DEFAULT_GAS_MARGIN_PERCENT,
    block_number_max_age: float = DEFAULT_BLOCK_NUMBER_MAX_AGE,
) -> None:
    """Make an existing ``w3`` (any synchronous provider) sign with ``account``: install
    :class:`Sm2SignerMiddleware` as the innermost layer, remove web3's fee and gas-buffer
    layers, and set ``w3.eth.default_account``."""
    signer = Sm2Signer(
        account,
        block_limit_window=block_limit_window,
        gas_margin_percent=gas_margin_percent,
        block_number_max_age=block_number_max_age,
    )
    onion = w3.middleware_onion
    for name in REPLACED_DEFAULT_MIDDLEWARE:
        if name in onion:
            onion.remove(name)
    if SIGNER_MIDDLEWARE_NAME in onion:
        onion.remove(SIGNER_MIDDLEWARE_NAME)
    # web3 types onion entries as middleware classes; a builder returning an instance is
    # what its own SignAndSendRawMiddlewareBuilder installs as well.
    onion.inject(
        cast(type[Web3Middleware], Sm2SignerMiddleware.build(signer)),
        name=SIGNER_MIDDLEWARE_NAME,
        layer=0,
    )
    w3.eth.default_account = account.checksum_address


class Sm2Signer:
    """Turns web3 transaction parameters into a signed raw lianxin transaction, filling what
    the parameters leave out from the node. Shared by every middleware instance web3
    builds for one client, so its caches outlive them; safe to use from several threads."""

    def __init__(
        self,
        account: Sm2Account,
        *,
        block_limit_window: int = DEFAULT_BLOCK_LIMIT_WINDOW,
        gas_margin_percent: int = DEFAULT_GAS_MARGIN_PERCENT,
        block_number_max_age: float = DEFAULT_BLOCK_NUMBER_MAX_AGE,
    ) -> None:
        """``block_limit_window``: blocks above the current height a transaction stays
        valid; ``gas_margin_percent``: gas allowed above the estimate; and
        ``block_number_max_age``: seconds a fetched height is reused (0 fetches always)."""
        if block_limit_window < 1 or gas_margin_percent < 0 or block_number_max_age < 0:
            raise ValueError("the window must be positive, margin and age not negative")
        self.account = account
        self.block_limit_window = block_limit_window
        self.gas_margin_percent = gas_margin_percent
        self.block_number_max_age = block_number_max_age
        self._lock = threading.Lock()
        self._chain_id: int | None = None
        self._block_number: tuple[int, float] | None = None

    def raw_transaction(self, w3: Web3, params: Mapping[str, Any]) -> str:
        """Return the ``0x``-hex signed transaction for the web3 transaction ``params``.

        ``gas`` defaults to the node's estimate plus the margin, ``block_limit`` to the
        current height plus the window, the replay nonce to 32 random bytes (a ``nonce``
        field is taken as a 256-bit big-endian replay nonce). Raises
        InvalidTransactionParams for another sender, another chain id, or a field this chain
        has no place for; an estimate that reverts raises web3's ContractLogicError.
        """
        unknown = set(params) - _MAPPED_FIELDS - _IGNORED_FIELDS
        if unknown:
            raise InvalidTransactionParams(f"no lianxin transaction field for {sorted(unknown)}")
        sender = params.get("from")
        if sender is not None and _to_bytes(sender, "from") != self.account.address:
            raise InvalidTransactionParams(
                f"sender {sender} is not the signing account {self.account.checksum_address}"
            )
        chain_id = self.chain_id(w3)
        if "chainId" in params and _to_int(params["chainId"], "chainId") != chain_id:
            raise InvalidTransactionParams(
                f"chainId {params['chainId']} differs from the node's chain id {chain_id}"
            )
        to_field = params.get("to")
        to = None if to_field in (None, "", b"") else _to_bytes(to_field, "to", ADDRESS_SIZE)
        data = _to_bytes(params.get("data", b""), "data")
        value = _to_int(params.get("value", 0), "value")
        gas_limit = (
            _to_int(params["gas"], "gas")
            if params.get("gas") is not None
            else self.estimate_gas(w3, to, data, value)
        )
        nonce = None
        if params.get("nonce") is not None:
            nonce = _to_fixed_bytes(_to_int(params["nonce"], "nonce"), "nonce", HASH_SIZE)
        tx = build_transaction(
            chain_id=chain_id,
            to=to,
            data=data,
            gas_limit=gas_limit,
            value=value,
            block_limit=block_limit_for(self.block_number(w3), self.block_limit_window),
            nonce=nonce,
        )
        return encode_raw(self.account.sign_transaction(tx))

    def chain_id(self, w3: Web3) -> int:
        """The node's chain id, asked once."""
        with self._lock:
            cached = self._chain_id
        if cached is None:
            cached = w3.eth.chain_id
            with self._lock:
                self._chain_id = cached
        return cached

    def block_number(self, w3: Web3) -> int:
        """The node's current height, reused for ``block_number_max_age`` seconds."""
        now = time.monotonic()
        with self._lock:
            cached = self._block_number
        if cached is not None and now - cached[1] < self.block_number_max_age:
            return cached[0]
        height = int(w3.eth.block_number)
        with self._lock:
            self._block_number = (height, now)
        return height

    def estimate_gas(self, w3: Web3, to: bytes | None, data: bytes, value: int) -> int:
        """The node's gas estimate for this call from the account, plus the margin."""
        call: TxParams = {
            "from": self.account.checksum_address,
            "data": HexStr("0x" + data.hex()),
            "value": Wei(value),
        }
        if to is not None:
            call["to"] = to_checksum_address(to)
        estimate = int(w3.eth.estimate_gas(call))
        return estimate + estimate * self.gas_margin_percent // 100


class Sm2SignerMiddleware(Web3Middleware):
    """The web3 layer of :class:`Sm2Signer`: ``eth_sendTransaction`` leaves as a signed
    ``eth_sendRawTransaction``, ``eth_accounts`` is answered with the signing account, and a
    mempool refusal raises :class:`sdk.errors.TransactionRefused`. Synchronous Web3 only."""

    signer: Sm2Signer

    @staticmethod
    def build(signer: Sm2Signer) -> Callable[[Web3], Sm2SignerMiddleware]:
        """Return what ``w3.middleware_onion.inject`` takes: a function of ``w3`` that
        makes the middleware for ``signer``."""

        def make(w3: Web3) -> Sm2SignerMiddleware:
            middleware = Sm2SignerMiddleware(w3)
            middleware.signer = signer
            return middleware

        return make

    def wrap_make_request(self, make_request: MakeRequestFn) -> MakeRequestFn:
        """Wrap the next layer's ``make_request`` with signing and refusal mapping."""
        w3 = cast(Web3, self._w3)

        def middleware(method: RPCEndpoint, params: Any) -> RPCResponse:
            if method == "eth_accounts":
                return {"jsonrpc": "2.0", "id": 0, "result": [self.signer.account.checksum_address]}
            if method == "eth_sendTransaction":
                method = RPCEndpoint("eth_sendRawTransaction")
                params = [self.signer.raw_transaction(w3, params[0])]
            response = make_request(method, params)
            if method == "eth_sendRawTransaction":
                raise_if_refused(response)
            return response

        return middleware


def raise_if_refused(response: RPCResponse) -> None:
    """Raise TransactionRefused if ``response`` carries one of the node's refusal codes;
    leave every other answer to web3's own error handling."""
    error = response.get("error")
    if isinstance(error, dict) and error.get("code") in REFUSAL_CODES:
        raise TransactionRefused(
            int(error["code"]), str(error.get("message", "")), error.get("data")
        )


def _to_int(value: object, field: str) -> int:
    """A non-negative integer from an int or a ``0x`` hex string (web3 sends either)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.startswith(("0x", "0X")):
        try:
            number = int(value, 16)
        except ValueError as exc:
            raise InvalidTransactionParams(f"{field}: not a hex number: {value!r}") from exc
    else:
        raise InvalidTransactionParams(f"{field}: expected an integer, got {value!r}")
    if number < 0:
        raise InvalidTransactionParams(f"{field}: must not be negative")
    return number


def _to_bytes(value: object, field: str, size: int | None = None) -> bytes:
    """Bytes from bytes or a ``0x`` hex string; exactly ``size`` of them if given."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str) and value.startswith(("0x", "0X")):
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError as exc:
            raise InvalidTransactionParams(f"{field}: not hex bytes: {value!r}") from exc
    else:
        raise InvalidTransactionParams(f"{field}: expected bytes or 0x-hex, got {value!r}")
    if size is not None and len(raw) != size:
        raise InvalidTransactionParams(f"{field}: expected {size} bytes, got {len(raw)}")
    return raw


def _to_fixed_bytes(number: int, field: str, size: int) -> bytes:
    """``number`` as exactly ``size`` big-endian bytes."""
    try:
        return number.to_bytes(size, "big")
    except OverflowError as exc:
        raise InvalidTransactionParams(f"{field}: does not fit in {size} bytes") from exc
