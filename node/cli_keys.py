"""``lianxin keys``: the SM2 account keys of a chain directory, each in an SM4 keystore under
its ``keys/`` folder: generate, list, show, export as PEM, import from PEM."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from node.cli_common import (
    DEFAULT_DIR,
    DirOption,
    JsonOption,
    PasswordOption,
    chain_password,
    console,
    emit,
    fail,
    load_signing_key,
)

KEYSTORE_ITERATIONS = 300_000
"""Key derivation iterations of a keystore these commands write."""

keys_app = typer.Typer(help="Manage SM2 account keys (SM4 keystores).", no_args_is_help=True)


@keys_app.command("new")
def keys_new(
    name: Annotated[str, typer.Argument(help="key name")],
    directory: DirOption = DEFAULT_DIR,
    password_file: PasswordOption = None,
) -> None:
    """Generate an SM2 key into an SM4 keystore under keys/."""
    from chain.crypto import PrivateKey
    from chain.errors import ChainError
    from node.chain_dir import ChainDir, save_key

    chain = ChainDir(directory)
    key = PrivateKey.generate()
    try:
        save_key(
            chain.keystore(name),
            key,
            chain_password(chain, password_file),
            iterations=KEYSTORE_ITERATIONS,
        )
    except ChainError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{name}: 0x{key.public_key.address.hex()}")


@keys_app.command("list")
def keys_list(directory: DirOption = DEFAULT_DIR, as_json: JsonOption = False) -> None:
    """List the account keystores and their addresses (no password needed)."""
    from node.chain_dir import ChainDir, keystore_address

    chain = ChainDir(directory)
    entries = {
        path.stem: "0x" + keystore_address(path).hex() for path in sorted(chain.keys.glob("*.json"))
    }
    if as_json:
        emit(entries, True)
        return
    table = Table("name", "address")
    for name, address in entries.items():
        table.add_row(name, address)
    console.print(table)


@keys_app.command("show")
def keys_show(
    name: str,
    directory: DirOption = DEFAULT_DIR,
    password_file: PasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a key's address and public key (decrypts the keystore)."""
    key = load_signing_key(directory, name, password_file)
    emit(
        {
            "name": name,
            "address": "0x" + key.public_key.address.hex(),
            "public_key": "0x" + key.public_key.to_bytes().hex(),
        },
        as_json,
    )


@keys_app.command("export")
def keys_export(
    name: str,
    directory: DirOption = DEFAULT_DIR,
    password_file: PasswordOption = None,
    public: Annotated[bool, typer.Option("--public", help="export the public key only")] = False,
) -> None:
    """Print the key as PEM (PKCS#8 private key, or SPKI public key with --public)."""
    key = load_signing_key(directory, name, password_file)
    pem = key.public_key.to_pem() if public else key.to_pem()
    sys.stdout.write(pem.decode())


@keys_app.command("import")
def keys_import(
    name: str,
    pem_file: Annotated[Path, typer.Argument(help="PEM file (PKCS#8 or SEC1), e.g. from openssl")],
    directory: DirOption = DEFAULT_DIR,
    password_file: PasswordOption = None,
) -> None:
    """Import an SM2 private key from PEM into an SM4 keystore."""
    from chain.crypto import PrivateKey
    from chain.errors import ChainError
    from node.chain_dir import ChainDir, save_key

    chain = ChainDir(directory)
    try:
        key = PrivateKey.from_pem(pem_file.read_bytes())
        save_key(
            chain.keystore(name),
            key,
            chain_password(chain, password_file),
            iterations=KEYSTORE_ITERATIONS,
        )
    except (OSError, ChainError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"{name}: 0x{key.public_key.address.hex()}")
