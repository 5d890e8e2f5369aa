"""What every ``lianxin`` command shares: exit codes, consoles, option types, and the functions
that read a password, find the node, call it, and open a signing key.

Exit codes: 0 success, 1 the checked thing is bad (a fault found, a refused or reverted
transaction, a key that does not decrypt), 2 usage or configuration error, 3 the node could not
be reached, or what answered is not a node answering (no JSON-RPC reply, or an answer of
another shape than the method's: see :mod:`node.rpc_client`).

A function here that cannot go on prints the reason to stderr and raises ``typer.Exit`` with the
exit code (``raise fail(...)``), so a command needs no error handling of its own for them.

Start-up. Typer reads every command's options before it runs any, so every ``node.cli_*`` module
is imported for every command, even ``--help``. At their top these modules import only what the
options and help need (typer, rich, this module); what a command needs to run (chain types and
encoding, contracts and ABI, stores, chain directories) it imports in its own body, so that help
and the commands that only read files or call the node start without py-evm, rlp, eth-utils or
eth-abi (tests/node/test_cli_startup.py keeps it so).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, overload

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from node.rpc_client import RpcError, hex_data, rpc_call

if TYPE_CHECKING:
    from chain.crypto import PrivateKey
    from node.chain_dir import ChainDir

EXIT_BAD = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

EXECUTION_REVERTED = 3
"""The JSON-RPC error code of a reverted eth_call or eth_estimateGas (its ``data`` holds the
revert data)."""

# Text is never wrapped at the terminal's width (tables still fit it): an address, a path or
# a command to copy must reach the reader, or a script, in one piece.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

DirOption = Annotated[Path, typer.Option("--dir", "-d", help="chain directory")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
RpcOption = Annotated[
    str | None, typer.Option("--rpc", help="node URL (default: from the chain's node.toml)")
]
KeyOption = Annotated[
    str, typer.Option("--key", "-k", help="name of the signing keystore under keys/")
]
PasswordOption = Annotated[
    Path | None, typer.Option("--password-file", help="file holding the keystore password")
]
DEFAULT_DIR = Path("devchain")
PASSWORD_ENV = "LIANXIN_KEYSTORE_PASSWORD"
DEV_ACCOUNTS_HELP = "funded dev accounts that all deploy and send; admin holds every role"
"""What ``init --dev`` and ``net init --dev`` make (see node.chain_dir.DEV_ACCOUNTS)."""

# Defined here, where the sending commands' help can show them, and used by node.tx_send, which
# imports the chain's transaction encoding and so cannot be imported for help.
GAS_MARGIN_PERCENT = 20
"""Gas allowed above the node's estimate when no gas limit is given."""
RECEIPT_TIMEOUT_S = 30.0
"""How long a sending command waits for the receipt by default, in seconds."""

RevertDescriber = Callable[[bytes], str]
"""Turns the revert data of a failed call into a readable reason."""

T = TypeVar("T")
Reader = Callable[[Any, str], T]
"""Reads a value of a node's answer (described by its second argument, e.g. "the node's
answer to eth_blockNumber") as a ``T``; raises node.rpc_client.MalformedAnswer if it is not
one. The readers of node.rpc_client are such."""


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` to stderr and return the Exit to raise. ``message`` is text, never
    markup: what a node answered may be quoted in it."""
    errors.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def cell(value: Any) -> str:
    """``value`` as the text of a table cell: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def field_table(rows: Iterable[tuple[str, str]]) -> Table:
    """A headerless two-column table of (field, value) rows; long values fold, never cut.
    Fields and values are text, never markup."""
    table = Table(show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for field, value in rows:
        table.add_row(escape(field), escape(value))
    return table


def emit(data: Any, as_json: bool) -> None:
    """Print ``data`` as JSON, or as a two-column table of its top-level fields."""
    if as_json or not isinstance(data, dict):
        console.print_json(json.dumps(data))
        return
    console.print(field_table((str(key), cell(value)) for key, value in data.items()))


def read_password(password_file: Path | None, *, confirm: bool, allow_none: bool) -> bytes | None:
    """The keystore password from a file, the environment, or a prompt (in that order)."""
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\r\n").encode()
        except OSError as exc:
            raise fail(f"cannot read password file: {exc}") from exc
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV].encode()
    if allow_none or not sys.stdin.isatty():
        if allow_none:
            return None
        raise fail(f"no password: use --password-file, ${PASSWORD_ENV}, or a terminal")
    text: str = typer.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm)
    return text.encode()


def chain_password(directory: ChainDir, password_file: Path | None) -> bytes:
    """The password for a chain's keystores (a dev chain's generated file is the default)."""
    if (
        password_file is None
        and PASSWORD_ENV not in os.environ
        and directory.password_file.exists()
    ):
        password_file = directory.password_file
    password = read_password(password_file, confirm=False, allow_none=False)
    assert password is not None
    return password


def load_signing_key(directory: Path, name: str, password_file: Path | None) -> PrivateKey:
    """The key of the keystore called ``name`` under the chain directory's keys/. Exits 2 if
    there is no such keystore, 1 if it does not decrypt."""
    from chain.errors import ChainError
    from node.chain_dir import ChainDir, ChainDirError, load_key

    chain = ChainDir(directory)
    try:
        keystore = chain.keystore(name)
    except ChainDirError as exc:
        raise fail(str(exc)) from exc
    if not keystore.exists():
        raise fail(f"no key {name!r} in {chain.keys}")
    try:
        return load_key(keystore, chain_password(chain, password_file))
    except ChainError as exc:
        raise fail(f"cannot open key {name!r}: {exc}", EXIT_BAD) from exc


def node_folders(directory: Path) -> list[Path]:
    """The validator (and observer) folders of the network in ``directory``, in index order;
    a usage error if it has none."""
    from node.chain_dir import ChainDir

    folders = ChainDir(directory).node_dirs()
    if not folders:
        raise fail(f"{directory} holds no validator folders; run `lianxin net init` first")
    return folders


def node_folder(directory: Path, index: int) -> Path:
    """Folder ``index`` (node-N) of the network in ``directory``; a usage error naming how
    many there are if there is no such folder."""
    folders = node_folders(directory)
    if not 0 <= index < len(folders):
        raise fail(f"no node {index}: the network has {len(folders)} node folders")
    return folders[index]


def rpc_url(directory: Path, rpc: str | None) -> str:
    """The node URL: ``--rpc`` if given, else from the chain directory's node.toml."""
    if rpc is not None:
        return rpc
    from node.chain_dir import ChainDir
    from node.config import ConfigError, load_config

    try:
        config = load_config(ChainDir(directory).config)
    except ConfigError as exc:
        raise fail(f"{exc} (or pass --rpc)") from exc
    return f"http://{config.rpc_host}:{config.rpc_port}"


@overload
def call(
    url: str, method: str, params: list[Any], describe_revert: RevertDescriber | None = None
) -> Any: ...


@overload
def call(
    url: str,
    method: str,
    params: list[Any],
    describe_revert: RevertDescriber | None = None,
    *,
    read: Reader[T],
) -> T: ...


def call(
    url: str,
    method: str,
    params: list[Any],
    describe_revert: RevertDescriber | None = None,
    *,
    read: Reader[Any] | None = None,
) -> Any:
    """The result of a JSON-RPC call, of the method's shape (node.rpc_client.rpc_call), and
    as ``read`` reads it when given. Exits 3 if the node cannot be reached or its answer is
    not of that shape, and 1 if it answers with an error; a revert is told by
    ``describe_revert`` when one is given."""
    try:
        result = rpc_call(url, method, params)
        return result if read is None else read(result, f"the node's answer to {method}")
    except RpcError as exc:
        if exc.code is None:
            raise fail(str(exc), EXIT_UNREACHABLE) from exc
        if exc.code == EXECUTION_REVERTED and describe_revert is not None:
            data = b""
            if exc.data is not None:
                data = checked(hex_data, exc.data, f"the revert data of {method}")
            raise fail(describe_revert(data), EXIT_BAD) from exc
        raise fail(f"{exc} (code {exc.code})", EXIT_BAD) from exc


def checked(read: Reader[T], value: Any, what: str) -> T:
    """``value`` as ``read`` reads it (``what`` names it in the message); exits 3, as
    :func:`call` does, if it is not of that shape."""
    try:
        return read(value, what)
    except RpcError as exc:
        raise fail(str(exc), EXIT_UNREACHABLE) from exc


def to_hex(value: bytes) -> str:
    """``value`` as 0x-prefixed hex, the JSON-RPC form of bytes."""
    return "0x" + value.hex()


def from_hex(text: str) -> bytes:
    """The bytes of hex ``text``, with or without its 0x prefix."""
    return bytes.fromhex(text[2:] if text.startswith(("0x", "0X")) else text)


def block_tag(text: str) -> str:
    """The JSON-RPC block parameter for ``text``: a named tag (latest, earliest, pending) as
    it is, else a height (decimal or 0x-hex) as a quantity. Exits 2 on anything else."""
    if text in ("latest", "earliest", "pending"):
        return text
    try:
        height = int(text, 0)
    except ValueError as exc:
        raise fail(f"not a block height: {text!r}") from exc
    if height < 0:
        raise fail("block height must be non-negative")
    return hex(height)
