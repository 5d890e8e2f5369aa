"""``lianxin accounts``: read and govern account roles held by the Permissions system contract.

``list`` reads every account the genesis names or a ``RolesChanged``/``Frozen`` event touched
and shows its current roles (``roles(address)`` through eth_call). ``grant``, ``revoke``,
``freeze`` and ``unfreeze`` send a transaction to the contract signed by a governance account's
keystore (``--key``, default ``admin``), wait for its receipt and exit 1 if it reverted (for
example when the key does not hold the governance role). A single governance account signs each
change for now; multi-signature governance comes with validator governance.

Exit codes and the functions shared with the other commands live in :mod:`node.cli_common`; the
transaction is sent and waited for by :mod:`node.tx_send`. What reads and governs the contract is
in :mod:`node.cli_accounts_roles`, which the commands import when they run.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from node.cli_common import (
    DEFAULT_DIR,
    DirOption,
    JsonOption,
    KeyOption,
    PasswordOption,
    RpcOption,
    console,
    emit,
    rpc_url,
)

ROLE_NAMES = ("sender", "deployer", "governance", "issuer", "auditor")
"""The roles of the Permissions contract (contracts.permissions.ROLE_BITS's names, in its
order), which the help of grant and revoke lists: that module imports eth-abi, too much for
help (a test keeps the two the same)."""

accounts_app = typer.Typer(
    help="Account roles on the Permissions contract: list, grant, revoke, freeze.",
    no_args_is_help=True,
)

AccountArgument = Annotated[str, typer.Argument(help="address (0x…) or key name under keys/")]
RolesArgument = Annotated[list[str], typer.Argument(help=f"roles: {', '.join(ROLE_NAMES)}")]


@accounts_app.command("list")
def accounts_list(
    directory: DirOption = DEFAULT_DIR, rpc: RpcOption = None, as_json: JsonOption = False
) -> None:
    """Every account of genesis or of a role event, with its current roles."""
    from node.cli_accounts_roles import known_accounts

    entries = known_accounts(directory, rpc_url(directory, rpc))
    if as_json:
        emit(entries, True)
        return
    table = Table("name", "roles", "frozen")
    # A shortened address is no address: the other columns wrap instead.
    table.add_column("address", no_wrap=True, min_width=42)
    for entry in entries:
        table.add_row(
            entry["name"] or "",
            ", ".join(entry["roles"]) or "(none)",
            "frozen" if entry["frozen"] else "",
            entry["address"],
        )
    console.print(table)


@accounts_app.command("grant")
def accounts_grant(
    account: AccountArgument,
    roles: RolesArgument,
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    key: KeyOption = "admin",
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Grant roles to an account."""
    from contracts.permissions import grant_call
    from node.cli_accounts_roles import govern, parse_account, roles_bits

    address = parse_account(directory, account)
    data = grant_call(address, roles_bits(roles))
    govern(directory, rpc, key, password_file, address, data, "grant", as_json)


@accounts_app.command("revoke")
def accounts_revoke(
    account: AccountArgument,
    roles: RolesArgument,
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    key: KeyOption = "admin",
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke roles from an account."""
    from contracts.permissions import revoke_call
    from node.cli_accounts_roles import govern, parse_account, roles_bits

    address = parse_account(directory, account)
    data = revoke_call(address, roles_bits(roles))
    govern(directory, rpc, key, password_file, address, data, "revoke", as_json)


@accounts_app.command("freeze")
def accounts_freeze(
    account: AccountArgument,
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    key: KeyOption = "admin",
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Freeze an account: it keeps its roles but may send nothing until unfrozen."""
    from contracts.permissions import freeze_call
    from node.cli_accounts_roles import govern, parse_account

    address = parse_account(directory, account)
    govern(directory, rpc, key, password_file, address, freeze_call(address), "freeze", as_json)


@accounts_app.command("unfreeze")
def accounts_unfreeze(
    account: AccountArgument,
    directory: DirOption = DEFAULT_DIR,
    rpc: RpcOption = None,
    key: KeyOption = "admin",
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Unfreeze an account."""
    from contracts.permissions import unfreeze_call
    from node.cli_accounts_roles import govern, parse_account

    address = parse_account(directory, account)
    data = unfreeze_call(address)
    govern(directory, rpc, key, password_file, address, data, "unfreeze", as_json)
