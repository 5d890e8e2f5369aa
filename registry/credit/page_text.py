"""The words of the public credit pages in Chinese (the default) and English (``?lang=en``):
labels, headings and sentences of the templates, and the names of record kinds, lists,
anchoring states and summary fields. Record contents (names, decisions, authorities, a
report's title and conclusion) are shown as published, in Chinese, in both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

__all__ = [
    "LANGUAGES",
    "Language",
    "anchoring_name",
    "field_label",
    "kind_name",
    "list_name",
    "page_text",
]

Language = Literal["zh", "en"]
"""A page language: ``zh`` (简体中文, the default) or ``en``."""

LANGUAGES: tuple[Language, ...] = ("zh", "en")

_TEXT: dict[str, tuple[str, str]] = {
    # key: (中文, English)
    "html_lang": ("zh-CN", "en"),
    "switch_label": ("English", "中文"),
    "switch_lang": ("en", "zh-CN"),
    "content_note": ("", "Record contents are shown as published, in Chinese."),
    "beijing_time": ("北京时间", "Beijing time"),
    "search_title": ("信用公示", "Public credit information"),
    "search_placeholder": (
        "企业名称或统一社会信用代码",
        "Company name or unified social credit code",
    ),
    "search_button": ("查询", "Search"),
    "search_intro": (
        "输入企业名称（至少两个字）或18位统一社会信用代码，查询处于公示期内的行政许可、行政处罚、"
        "信用名单和信用承诺信息。",
        "Enter a company name (two characters or more) or an 18-character unified social "
        "credit code to find administrative licensing and penalty decisions, credit list "
        "entries and credit commitments inside their publication period.",
    ),
    "search_found": ("找到 {count} 个主体", "{count} subject(s) found"),
    "search_on_display": ("公示中 {count} 条", "{count} on display"),
    "search_none": (
        "未找到与“{text}”相关、处于公示期内的信息。",
        "Nothing on public display matches “{text}”.",
    ),
    "search_footer": (
        "查询时间：{at}（北京时间）。仅显示处于公示期内的信息；自然人信息不提供检索。",
        "Searched at {at} (Beijing time). Only information inside its publication period is "
        "shown; natural persons cannot be searched.",
    ),
    "back": ("← 信用公示", "← Public credit information"),
    "subject_not_found": ("未找到公示信息", "No information on display"),
    "lists": ("信用名单", "Credit lists"),
    "entered_on": ("列入日期", "Entered on"),
    "records_on_display": ("公示信息（{count} 条）", "Records on display ({count})"),
    "displayed_until": ("公示截止", "Displayed until"),
    "subject_none": (
        "该主体当前没有处于公示期内的信息。",
        "This subject has no information on display now.",
    ),
    "subject_footer": (
        "查询时间：{at}（北京时间）。公示期届满或经信用修复的信息不再显示；证件号码遮蔽显示。",
        "Viewed at {at} (Beijing time). Information whose publication period has ended, or "
        "that was repaired, is no longer shown; identity numbers are masked.",
    ),
    "report_title": ("信用报告核验", "Credit report check"),
    "genuine_heading": ("报告真实，未被修改", "Genuine report, unchanged"),
    "genuine_text": (
        "所核验文件的SM3摘要与本报告出具时登记的摘要一致。",
        "The SM3 digest of the file checked equals the one recorded when this report was issued.",
    ),
    "genuine_anchored_text": (
        "所核验文件的SM3摘要与本报告出具时登记并上链存证的摘要一致。",
        "The SM3 digest of the file checked equals the one recorded and anchored on chain "
        "when this report was issued.",
    ),
    "modified_heading": ("文件与报告不一致", "The file does not match this report"),
    "modified_text": (
        "所核验文件的SM3摘要与本报告登记的摘要不同：该文件不是本报告的原件，可能已被修改。"
        "请以下方所示报告内容为准。",
        "The SM3 digest of the file checked differs from the one recorded for this report: "
        "the file is not the original and may have been changed. Rely on the report's "
        "content shown below.",
    ),
    "pending_text": (
        "本页显示该报告出具时所载内容。上传所持报告的PDF文件，可核验其是否为原件、未被修改。",
        "This page shows what the report stated when it was issued. Upload the PDF you hold "
        "to check that it is the original, unchanged.",
    ),
    "upload_label": ("上传报告PDF文件核验：", "Check a report PDF:"),
    "sm3_label": ("或输入文件的SM3摘要：", "Or enter the file's SM3 digest:"),
    "check_button": ("核验", "Check"),
    "checking": ("正在核验……", "Checking…"),
    "check_failed": (
        "核验失败（{error}），请稍后重试。",
        "The check failed ({error}); try again later.",
    ),
    "report_number": ("报告编号", "Report number"),
    "subject_name": ("主体名称", "Subject"),
    "subject_code": ("统一社会信用代码/证件号码", "Unified social credit code / ID number"),
    "as_of": ("报告时点", "As of"),
    "issued_at": ("出具时间", "Issued at"),
    "issuer": ("出具机构", "Issued by"),
    "purpose": ("报告用途", "Purpose"),
    "conclusion": ("查询结论", "Conclusion"),
    "report_records": ("报告所载公示信息（{count} 条）", "Records stated in the report ({count})"),
    "anchoring": ("存证信息", "Anchoring"),
    "pdf_sm3": ("报告PDF的SM3摘要", "SM3 of the report PDF"),
    "checked_sm3": ("所核验文件的SM3摘要", "SM3 of the file checked"),
    "anchoring_state": ("存证状态", "Anchoring status"),
    "block": ("（区块 {number}）", " (block {number})"),
    "offline_data": ("离线核验数据", "Offline verification data"),
    "report_json": ("报告JSON及证明", "Report JSON with proofs"),
    "report_footer": (
        "核验时间：{at}（北京时间）。本页内容为报告出具时所载信息，不代表该主体当前的信用状况。",
        "Checked at {at} (Beijing time). This page shows what the report stated when it was "
        "issued, not the subject's current credit standing.",
    ),
    "long_term": ("长期", "long-term"),
}

_KINDS: dict[str, tuple[str, str]] = {
    "penalty": ("行政处罚", "Administrative penalty"),
    "licensing": ("行政许可", "Administrative licensing"),
    "list_entry": ("名单", "Credit list"),
    "commitment": ("信用承诺", "Credit commitment"),
}

_LISTS: dict[str, tuple[str, str]] = {
    "black": ("严重失信主体名单", "List of seriously dishonest entities"),
    "red": ("红名单", "Red list"),
}

_ANCHORING: dict[str | None, tuple[str, str]] = {
    None: ("待出具部门签名", "Waiting for the issuing department's signature"),
    "accepted": ("已签名，等待上链", "Signed, waiting to be anchored"),
    "sealed": ("已封批，等待上链", "Sealed in a batch, waiting to be anchored"),
    "anchored": ("已上链存证", "Anchored on chain"),
}

_FIELD_LABELS: dict[str, str] = {
    "处罚类别": "Penalty category",
    "违法行为类型": "Type of violation",
    "处罚内容": "Penalty",
    "罚款金额（万元）": "Fine (10,000 yuan)",
    "处罚机关": "Deciding authority",
    "决定日期": "Decision date",
    "许可类别": "Licence category",
    "许可内容": "Licensed activity",
    "许可机关": "Licensing authority",
    "有效期至": "Valid until",
    "名单名称": "List",
    "列入原因": "Reason for entry",
    "认定机关": "Deciding authority",
    "列入日期": "Entered on",
    "承诺事项": "Commitment",
    "状态": "Status",
    "受理机关": "Receiving authority",
    "签署日期": "Signed on",
}
"""English labels of the summary fields, by their Chinese label."""


def _pick(pair: tuple[str, str], lang: Language) -> str:
    return pair[LANGUAGES.index(lang)]


def page_text(lang: Language) -> Mapping[str, str]:
    """Every template text in ``lang``, by key (sentences with ``{…}`` are formatted by
    the template)."""
    return {key: _pick(pair, lang) for key, pair in _TEXT.items()}


def kind_name(kind: str, lang: Language) -> str:
    """The name of a record kind (the kind itself if unknown)."""
    pair = _KINDS.get(kind)
    return kind if pair is None else _pick(pair, lang)


def list_name(list_type: str, lang: Language) -> str:
    """The name of a list type (the type itself if unknown)."""
    pair = _LISTS.get(list_type)
    return list_type if pair is None else _pick(pair, lang)


def anchoring_name(state: str | None, lang: Language) -> str:
    """Where a report's anchoring is, in words (the state itself if unknown)."""
    pair = _ANCHORING.get(state)
    return str(state) if pair is None else _pick(pair, lang)


def field_label(label: str, lang: Language) -> str:
    """A summary field's label (given in Chinese) in ``lang``."""
    return label if lang == "zh" else _FIELD_LABELS.get(label, label)
