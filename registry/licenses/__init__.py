"""E-licenses (电子证照, GB/T 36901-36905) as the registry handles them: GB/T 36903
metadata and its anchored hash, QR codes (static links and signed dynamic tokens), and the
citizen's verify page. Pure domain code: no routes, no database, no ledger access.

Identifiers themselves (GB/T 36904, USCC, identity numbers) live in :mod:`sdk.identifiers`.
"""

from registry.licenses.errors import (
    BadTokenSignature,
    InvalidMetadata,
    InvalidPageView,
    InvalidTokenRequest,
    LicenseError,
    MalformedToken,
    TokenError,
    TokenExpired,
    UnsupportedLanguage,
)
from registry.licenses.metadata import ContentField, HolderIdType, LicenseMetadata, metadata_hash
from registry.licenses.page import (
    PageSigner,
    PageStatus,
    VerifyPageView,
    choose_language,
    page_status,
    render_verify_page,
)
from registry.licenses.qr import QrImages, qr_version, static_qr, token_url
from registry.licenses.reasons import REASON_TEXT, reason_text
from registry.licenses.tokens import TokenClaims, issue_token, verify_token

__all__ = [
    "REASON_TEXT",
    "BadTokenSignature",
    "ContentField",
    "HolderIdType",
    "InvalidMetadata",
    "InvalidPageView",
    "InvalidTokenRequest",
    "LicenseError",
    "LicenseMetadata",
    "MalformedToken",
    "PageSigner",
    "PageStatus",
    "QrImages",
    "TokenClaims",
    "TokenError",
    "TokenExpired",
    "UnsupportedLanguage",
    "VerifyPageView",
    "choose_language",
    "issue_token",
    "metadata_hash",
    "page_status",
    "qr_version",
    "reason_text",
    "render_verify_page",
    "static_qr",
    "token_url",
    "verify_token",
]
