"""The pages' words in Chinese (the default) and English, and the names of contract events,
statuses and roles an auditor reads instead of hex."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("zh", "en")

WORDS: dict[str, tuple[str, str]] = {
    "title": ("链信 区块链浏览器", "Lianxin explorer"),
    "overview": ("概览", "Overview"),
    "blocks": ("区块", "Blocks"),
    "block": ("区块", "Block"),
    "transaction": ("交易", "Transaction"),
    "transactions": ("交易", "Transactions"),
    "validators": ("验证节点", "Validators"),
    "permissions": ("权限变更", "Permissions"),
    "departments": ("部门", "Departments"),
    "department": ("部门", "Department"),
    "account": ("账户", "Account"),
    "record": ("存证记录", "Notarized record"),
    "license": ("电子证照", "E-license"),
    "verify": ("链上复核", "Re-verify"),
    "search": ("搜索", "Search"),
    "search_hint": (
        "高度、哈希、地址、统一社会信用代码、记录、证照标识、决定书文号、档号",
        "height, hash, address, USCC, record, license id, decision number, archival code",
    ),
    "height": ("高度", "Height"),
    "hash": ("哈希", "Hash"),
    "time": ("时间", "Time"),
    "proposer": ("出块节点", "Proposer"),
    "size": ("大小（字节）", "Size (bytes)"),
    "tx_count": ("交易数", "Transactions"),
    "tx_per_minute": ("每分钟交易", "Transactions per minute"),
    "validators_online": ("在线验证节点", "Validators online"),
    "recent_blocks": ("最新区块", "Recent blocks"),
    "recent_txs": ("最新交易", "Recent transactions"),
    "certificate": ("提交证书", "Commit certificate"),
    "signers": ("签名节点", "Signers"),
    "signed": ("已签名", "signed"),
    "not_signed": ("未签名", "not signed"),
    "power_reached": ("达到的投票权", "Voting power reached"),
    "quorum": ("法定票数", "quorum"),
    "round": ("轮次", "Round"),
    "parent": ("父区块", "Parent"),
    "state_root": ("状态根", "State root"),
    "tx_root": ("交易根", "Transaction root"),
    "receipt_root": ("回执根", "Receipt root"),
    "status": ("状态", "Status"),
    "success": ("成功", "success"),
    "reverted": ("已回滚", "reverted"),
    "gas": ("燃料", "Gas"),
    "sender": ("签名方", "Signer"),
    "to": ("接收方", "To"),
    "call": ("调用", "Call"),
    "events": ("事件", "Events"),
    "proof": ("默克尔证明", "Merkle proof"),
    "evidence": ("导出证据包", "Export evidence"),
    "name": ("名称", "Name"),
    "uscc": ("统一社会信用代码", "USCC"),
    "keys": ("密钥与有效期", "Keys and validity windows"),
    "roles": ("角色", "Roles"),
    "valid_from": ("生效区块", "Valid from block"),
    "valid_until": ("失效区块", "Valid until block"),
    "open_ended": ("长期有效", "open-ended"),
    "counts": ("存证与签发统计", "What it anchored and issued"),
    "history": ("历史", "History"),
    "frozen": ("已冻结", "frozen"),
    "active": ("正常", "active"),
    "record_revoked": ("已撤销", "revoked"),
    "set_at": ("指定高度的验证节点集合", "Validator set at height"),
    "governance": ("治理时间线", "Governance timeline"),
    "participation": ("签名参与度", "Signing participation"),
    "missed": ("漏签高度", "Missed precommits"),
    "member_heights": ("在任高度数", "Heights as member"),
    "signed_heights": ("签名高度数", "Heights signed"),
    "power": ("投票权", "Power"),
    "effective": ("生效高度", "Effective height"),
    "address": ("地址", "Address"),
    "public_key": ("公钥", "Public key"),
    "not_found": ("未找到", "Not found"),
    "login": ("审计员登录", "Auditor login"),
    "logout": ("退出", "Log out"),
    "challenge": ("登录挑战", "Login challenge"),
    "signature": ("SM2 签名（DER，十六进制）", "SM2 signature (DER, hex)"),
    "login_help": (
        "用审计员 SM2 私钥对下列挑战签名（例如 lianxin explorer sign-challenge "
        "keys/审计员.json < 挑战.txt，或 openssl 3 / gmssl），再填入公钥与签名。",
        "Sign the challenge below with the auditor's SM2 key (lianxin explorer "
        "sign-challenge KEYSTORE < challenge.txt, or openssl 3 / gmssl), then paste both.",
    ),
    "from_height": ("起始高度", "From height"),
    "to_height": ("结束高度", "To height"),
    "reexecute": ("重新执行全部交易", "Re-execute every block"),
    "start": ("开始", "Start"),
    "progress": ("进度", "Progress"),
    "report": ("报告", "Report"),
    "ok": ("通过", "passed"),
    "fault": ("发现问题", "fault found"),
    "first_bad_height": ("首个异常高度", "First bad height"),
    "reason": ("原因", "Reason"),
    "lifecycle": ("全生命周期", "Full lifecycle"),
    "batch": ("批次根", "Batch root"),
    "leaf": ("叶子哈希", "Leaf hash"),
    "contract": ("合约", "Contract"),
    "more": ("更多", "More"),
    "proposal": ("治理提案", "Governance proposal"),
    "target": ("变更对象", "Validator"),
    "proposer_": ("提议者", "Proposed by"),
    "voter": ("投票者", "Voter"),
    "credit_record": ("信用记录", "Credit record"),
    "archive_package": ("档案包", "Archive package"),
    "decision_number": ("决定书文号", "Decision number"),
    "archival_code": ("档号", "Archival code"),
    "authority": ("决定机关", "Authority"),
    "subject_name": ("行政相对人", "Subject"),
    "kind": ("类别", "Kind"),
    "version": ("版本", "Version"),
    "changed_fields": ("更正字段", "Changed fields"),
    "verdict": ("核验结论", "Verdict"),
    "anchored_in": ("上链区块", "Anchored in block"),
    "anchoring_department": ("上链部门", "Anchoring department"),
    "signing_department": ("签名部门", "Signing department"),
    "leaf_position": ("叶子位置", "Leaf position"),
    "registry_word": (
        "以下记录描述来自登记服务；每个事件均已对照本浏览器索引的链上数据逐一核验，核验结论见各行。",
        "The description below is the registry's; every event was checked against the chain "
        "as this explorer indexed it, with the verdict on its row.",
    ),
    "unproven_note": (
        "未证明的事件仅为登记服务的陈述，不作为链上事实。",
        "An event not proven is only the registry's word, not a fact of the chain.",
    ),
    "proven_count": ("已证明事件", "Events proven"),
    "title_": ("题名", "Title"),
    "creator": ("责任者", "Creator"),
    "retention": ("保管期限", "Retention"),
    "package_root": ("包根哈希", "Package root"),
    "disposed": ("已销毁", "disposed"),
    "custody_events": ("保管事件", "Custody events"),
    "versions": ("版本", "Versions"),
    "outcome": ("结果", "Outcome"),
    "agent": ("执行者", "Agent"),
    "bad_request": ("请求参数有误", "Bad request"),
    "registry_not_configured": (
        "本浏览器未配置登记服务，无法读取信用记录与档案。",
        "No registry is configured for this explorer: credit records and archives cannot be read.",
    ),
    "registry_unavailable": (
        "登记服务未能给出可用的答复，请稍后再试。",
        "The registry did not give a usable answer; try again later.",
    ),
    "verified_note": (
        "本页所示每个区块均已按其高度的验证节点集合核验提交证书。",
        "Every block shown here had its commit certificate checked against its height's "
        "validator set.",
    ),
}

EVENT_NAMES: dict[str, tuple[str, str]] = {
    "DepartmentRegistered": ("部门登记", "Department registered"),
    "DepartmentFrozen": ("部门冻结状态变更", "Department freeze changed"),
    "KeyAdded": ("添加密钥", "Key added"),
    "KeyClosed": ("密钥到期", "Key closed"),
    "KeyRolesChanged": ("密钥角色变更", "Key roles changed"),
    "GovernanceTransferred": ("治理权转移", "Governance transferred"),
    "BatchAnchored": ("批次上链", "Batch anchored"),
    "BatchRevoked": ("批次撤销", "Batch revoked"),
    "LeafRevoked": ("记录撤销", "Record revoked"),
    "LicenseIssued": ("证照签发", "License issued"),
    "StatusChanged": ("证照状态变更", "License status changed"),
    "LicenseChanged": ("证照变更", "License changed"),
    "RolesChanged": ("权限变更", "Roles changed"),
    "Frozen": ("账户冻结状态变更", "Account freeze changed"),
    "Proposed": ("提议", "Proposed"),
    "Voted": ("投票", "Voted"),
    "Executed": ("执行", "Executed"),
    "tx": ("交易", "Transactions"),
}

CREDIT_KINDS: dict[str, tuple[str, str]] = {
    "publish": ("公示", "Published"),
    "correct": ("更正", "Corrected"),
    "withdraw": ("撤销决定", "Withdrawn"),
    "repair": ("信用修复", "Repaired"),
    "stop_publishing": ("停止公示", "Publishing stopped"),
    "list_entry": ("列入名单", "Entered a list"),
    "list_exit": ("移出名单", "Left a list"),
    "commitment_settled": ("承诺履行认定", "Commitment settled"),
    "archive-version": ("归档版本", "Package version"),
    "ingestion": ("接收入库", "Ingest"),
    "validation": ("真实性校验", "Validation"),
    "fixity check": ("固定性审计", "Fixity audit"),
    "format identification": ("格式识别", "Format identification"),
    "virus check": ("病毒检查", "Virus check"),
    "migration": ("格式迁移", "Migration"),
    "access": ("利用", "Access"),
    "transfer": ("移交", "Transfer"),
    "deletion": ("销毁", "Disposal"),
}
"""Credit lifecycle events and archive custody events by their kind."""

VERDICTS: dict[str, tuple[str, str]] = {
    "proven": ("已证明", "proven"),
    "revoked": ("已证明，已撤销", "proven, revoked"),
    "pending": ("尚未上链", "not on chain yet"),
    "failed": ("核验失败", "check failed"),
}
"""Verdicts of an event proven against the index."""

LICENSE_STATUSES: dict[int, tuple[str, str]] = {
    0: ("无", "none"),
    1: ("有效", "issued"),
    2: ("已变更", "changed"),
    3: ("已中止", "suspended"),
    4: ("已撤销", "revoked"),
    5: ("已过期", "expired"),
}


def language(value: str | None) -> str:
    """A supported language code (Chinese unless English is asked for)."""
    return "en" if value == "en" else "zh"


def translator(lang: str) -> Callable[[str], str]:
    """The lookup of page words in ``lang``; an unknown key is shown as itself."""
    index = LANGUAGES.index(language(lang))

    def word(key: str) -> str:
        for table in (WORDS, EVENT_NAMES, CREDIT_KINDS, VERDICTS):
            if key in table:
                return table[key][index]
        return key

    return word


def license_status(lang: str, code: int) -> str:
    """A license status code in words."""
    pair = LICENSE_STATUSES.get(int(code), (str(code), str(code)))
    return pair[LANGUAGES.index(language(lang))]
