"""The Permissions system contract as ``lianxin accounts`` (:mod:`node.cli_accounts`) reads and
governs it: which accounts to show and their roles, and a governance transaction sent and
reported. The commands import this module when they run, not at start-up: it needs the
contract's ABI encoding and the chain's transaction encoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_utils.abi import function_signature_to_4byte_selector

from chain.errors import ChainError
from chain.primitives import Address
from contracts.permissions import (
    FROZEN_TOPIC,
    PERMISSIONS_ADDRESS,
    ROLE_BITS,
    ROLES_CHANGED_TOPIC,
    UnknownRole,
    is_frozen,
    role_bits,
    role_names,
    roles_call,
)
from node.chain_dir import ChainDir, keystore_address
from node.cli_common import (
    EXIT_BAD,
    EXIT_UNREACHABLE,
    call,
    console,
    emit,
    fail,
    from_hex,
    load_signing_key,
    rpc_url,
    to_hex,
)
from node.genesis_file import load_genesis
from node.rpc_client import hex_data
from node.tx_send import send_transaction

GOVERNANCE_GAS = 300_000
"""Gas limit of a governance transaction (a grant uses about 60,000). Fixed rather than
estimated, so that a change the contract refuses is still sent and its revert reported."""

CONTRACT_ERRORS = {
    function_signature_to_4byte_selector(signature): signature
    for signature in (
        "NotGovernance(address)",
        "LastGovernance()",
        "InvalidRoles(uint256)",
        "ZeroAddress()",
    )
}
"""Revert selector → the Permissions contract error it names."""


def parse_account(directory: Path, text: str) -> Address:
    """An address given as 0x-hex, or the address of the keystore named ``text``."""
    if text.startswith("0x"):
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raw = b""
        if len(raw) != 20:
            raise fail(f"not a 20-byte address: {text!r}")
        return Address(raw)
    try:
        return keystore_address(ChainDir(directory).keystore(text))
    except ChainError as exc:
        raise fail(f"{text!r} is neither an address nor a key name: {exc}") from exc


def roles_bits(names: list[str]) -> int:
    """The role bits of the role ``names``; exits 2 on a name that is no role."""
    try:
        return role_bits(names)
    except UnknownRole as exc:
        raise fail(str(exc)) from exc


def _require_contract(url: str) -> None:
    code = call(url, "eth_getCode", [to_hex(PERMISSIONS_ADDRESS), "latest"])
    if code in (None, "0x"):
        raise fail(
            "this chain has static permissions (its genesis holds no Permissions contract); "
            "roles cannot change",
            EXIT_BAD,
        )


def current_roles(url: str, account: Address) -> int:
    """The role bits of ``account`` at the node's head; exits 3 if the node's answer is not
    the one 32-byte word ``roles(address)`` returns."""
    output = call(
        url,
        "eth_call",
        [{"to": to_hex(PERMISSIONS_ADDRESS), "data": to_hex(roles_call(account))}, "latest"],
        read=hex_data,
    )
    if len(output) != 32:
        raise fail(
            f"the node's answer to eth_call of roles(address) is {len(output)} bytes, not one "
            "32-byte word",
            EXIT_UNREACHABLE,
        )
    return int.from_bytes(output, "big")


def _account_json(address: Address, bits: int, names: dict[Address, str]) -> dict[str, Any]:
    return {
        "address": to_hex(address),
        "name": names.get(address),
        "roles": sorted(role_names(bits), key=list(ROLE_BITS).index),
        "frozen": is_frozen(bits),
    }


def _key_names(directory: Path) -> dict[Address, str]:
    names: dict[Address, str] = {}
    for path in sorted(ChainDir(directory).keys.glob("*.json")):
        try:
            names[keystore_address(path)] = path.stem
        except ChainError:
            continue
    return names


def _genesis_accounts(directory: Path) -> list[Address]:
    path = ChainDir(directory).genesis
    if not path.exists():
        return []
    try:
        return [account.address for account in load_genesis(path).accounts]
    except ChainError as exc:
        raise fail(str(exc)) from exc


def known_accounts(directory: Path, url: str) -> list[dict[str, Any]]:
    """Every account of genesis or of a role event, with its current roles (address, key
    name, roles, frozen), in the order genesis and then the events name them."""
    _require_contract(url)
    seen: dict[Address, None] = dict.fromkeys(_genesis_accounts(directory))
    logs = call(
        url,
        "eth_getLogs",
        [
            {
                "fromBlock": "earliest",
                "toBlock": "latest",
                "address": to_hex(PERMISSIONS_ADDRESS),
                "topics": [[to_hex(ROLES_CHANGED_TOPIC), to_hex(FROZEN_TOPIC)]],
            }
        ],
    )
    # Of the shape node.rpc_client checks: each topic is 32 bytes of hex.
    for log in logs:
        if len(log["topics"]) < 2:
            raise fail(
                "the node's answer to eth_getLogs holds a role event without its account topic",
                EXIT_UNREACHABLE,
            )
        seen.setdefault(Address(from_hex(log["topics"][1])[-20:]), None)
    names = _key_names(directory)
    return [_account_json(address, current_roles(url, address), names) for address in seen]


def _revert_reason(output: str) -> str:
    raw = from_hex(output)
    return CONTRACT_ERRORS.get(raw[:4], "reverted" if not raw else f"revert data 0x{raw.hex()}")


def govern(
    directory: Path,
    rpc: str | None,
    key_name: str,
    password_file: Path | None,
    account: Address,
    data: bytes,
    action: str,
    as_json: bool,
) -> None:
    """Sign ``data`` to the Permissions contract with ``key_name``, send it, wait for the
    receipt, and report; exit 1 if the transaction reverted."""
    url = rpc_url(directory, rpc)
    _require_contract(url)
    key = load_signing_key(directory, key_name, password_file)
    receipt = send_transaction(url, key, to=PERMISSIONS_ADDRESS, data=data, gas=GOVERNANCE_GAS)
    tx_hash = receipt["transactionHash"]
    ok = receipt["status"] == "0x1"
    result: dict[str, Any] = {
        "action": action,
        "ok": ok,
        "transaction": tx_hash,
        "block": int(receipt["blockNumber"], 16),
        "by": to_hex(key.public_key.address),
    }
    if not ok:
        result["error"] = _revert_reason(receipt.get("output") or "0x")
    result["account"] = _account_json(account, current_roles(url, account), _key_names(directory))
    if as_json:
        emit(result, True)
    elif ok:
        entry = result["account"]
        roles = ", ".join(entry["roles"]) or "(none)"
        state = " (frozen)" if entry["frozen"] else ""
        console.print(
            f"{action}: {entry['address']} now holds {roles}{state} "
            f"(tx {tx_hash}, block {result['block']})"
        )
    if not ok:
        raise fail(
            f"{action} reverted: {result['error']} (tx {tx_hash}, block {result['block']})",
            EXIT_BAD,
        )
