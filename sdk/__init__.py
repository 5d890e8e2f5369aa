"""The client library of lianxin: SM2 accounts, transaction building, and (in
:mod:`sdk.web3_integration`, which needs web3.py) ordinary web3.py contracts signed with SM2."""

from sdk.account import Sm2Account
from sdk.errors import (
    InvalidTransactionParams,
    RefusalReason,
    SdkError,
    TransactionRefused,
    UnsignedTransaction,
)
from sdk.transactions import (
    DEFAULT_BLOCK_LIMIT_WINDOW,
    block_limit_for,
    build_transaction,
    encode_raw,
    new_nonce,
)

__all__ = [
    "DEFAULT_BLOCK_LIMIT_WINDOW",
    "InvalidTransactionParams",
    "RefusalReason",
    "SdkError",
    "Sm2Account",
    "TransactionRefused",
    "UnsignedTransaction",
    "block_limit_for",
    "build_transaction",
    "encode_raw",
    "new_nonce",
]
