"""What the reason codes of ``contracts.trust.Reason`` say, in Chinese and English, for
pages that citizens read."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from contracts.trust import Reason
from registry.licenses.errors import UnsupportedLanguage

__all__ = ["LANGUAGES", "REASON_TEXT", "reason_text"]

LANGUAGES = ("zh", "en")
"""Languages the texts are written in; the first is the default."""

REASON_TEXT: Mapping[Reason, Mapping[str, str]] = MappingProxyType(
    {
        Reason.UNSPECIFIED: {"zh": "未说明原因", "en": "No reason given"},
        Reason.ISSUED_IN_ERROR: {"zh": "证照签发有误", "en": "Issued in error"},
        Reason.KEY_COMPROMISE: {
            "zh": "签发密钥已泄露或疑似泄露",
            "en": "The issuing key is compromised or suspected to be",
        },
        Reason.SUPERSEDED: {"zh": "已由新版本替代", "en": "Replaced by a newer version"},
        Reason.DATA_CHANGED: {"zh": "登记事项发生变更", "en": "Registered particulars changed"},
        Reason.HOLDER_REQUEST: {"zh": "持证主体申请", "en": "At the holder's request"},
        Reason.LEGAL_DECISION: {
            "zh": "依据行政决定或司法裁判",
            "en": "By an administrative decision or court judgment",
        },
        Reason.ENTITY_DEREGISTERED: {
            "zh": "持证主体已注销",
            "en": "The holder was deregistered or dissolved",
        },
        Reason.TERM_ENDED: {"zh": "有效期届满", "en": "The term of validity ended"},
        Reason.UNDER_INVESTIGATION: {
            "zh": "立案调查期间暂停",
            "en": "Suspended while a case is examined",
        },
        Reason.RESTORED: {"zh": "暂停已解除", "en": "The suspension was lifted"},
    }
)
"""Reason code → language → text. Every :class:`Reason` has a text in every language."""

_UNKNOWN = {"zh": "原因代码 {code}", "en": "Reason code {code}"}


def reason_text(code: int, lang: str) -> str:
    """The text for reason ``code`` in ``lang`` ("zh" or "en"). A code this table does not
    know (a newer registry may write one) is shown as its number, never dropped. Raises
    UnsupportedLanguage for a language not in LANGUAGES."""
    if lang not in LANGUAGES:
        raise UnsupportedLanguage(f"no texts in language {lang!r}")
    try:
        return REASON_TEXT[Reason(code)][lang]
    except ValueError:
        return _UNKNOWN[lang].format(code=int(code))
