"""``lianxin registry``, ``archives``, ``data``, ``credit``, ``explorer`` and
``verify-evidence``: the apps' own command lines, each run as its own process (the node never
imports them), with the rest of the command line passed on as it is."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from node.cli_common import DEFAULT_DIR, DirOption, fail

PASSED_ON: dict[str, Any] = {
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
    "add_help_option": False,
}
"""How a command that hands its whole command line to an app is registered: its options,
``--help`` among them, are the app's."""


def registry(ctx: typer.Context) -> None:
    """The registry service's own commands (start, bootstrap, clients …), run as its own
    process on the registry of the chain in --dir (default devchain): `lianxin registry
    clients add ...`, `lianxin registry start`, `lianxin registry --help`."""
    from node.cli_dev import registry_cli_environment

    args, directory = _split_dir_option(list(ctx.args))
    env = registry_cli_environment(directory, os.environ)
    command = [sys.executable, "-m", "registry.cli", *args]
    os.execve(sys.executable, command, env)


def archives(ctx: typer.Context) -> None:
    """E-archive commands (a fixity audit with a progress bar, offline verification of an
    access copy), run as their own process on the registry of the chain in --dir (default
    devchain): `lianxin archives audit`, `lianxin archives verify DIP.zip --genesis G`."""
    from node.cli_dev import registry_cli_environment

    args, directory = _split_dir_option(list(ctx.args))
    env = registry_cli_environment(directory, os.environ)
    command = [sys.executable, "-m", "registry.archives.cli", *args]
    os.execve(sys.executable, command, env)


def data(ctx: typer.Context) -> None:
    """Data-sharing authorizations and access logs (list, show, accesses --verify,
    tracker), a client of the registry run as its own process (`lianxin data --help`)."""
    command = [sys.executable, "-m", "registry.authorizations.cli", *ctx.args]
    os.execve(sys.executable, command, dict(os.environ))


def credit(ctx: typer.Context) -> None:
    """A department's public-credit commands (import a 双公示 file with a progress bar,
    repair), a client of the registry run as its own process (`lianxin credit --help`)."""
    command = [sys.executable, "-m", "registry.credit.cli", *ctx.args]
    os.execve(sys.executable, command, dict(os.environ))


def explorer(ctx: typer.Context) -> None:
    """The auditors' explorer on the chain in --dir (default devchain): its indexer follows
    the chain's node and its pages are served, as their own process (`lianxin explorer
    --help` for its options)."""
    args, directory = _split_dir_option(list(ctx.args))
    command = [sys.executable, "-m", "explorer", *args, "--dir", str(directory)]
    os.execve(sys.executable, command, dict(os.environ))


def verify_evidence(
    ctx: typer.Context,
    evidence_file: Annotated[Path, typer.Argument(help="evidence zip exported by the explorer")],
    directory: DirOption = DEFAULT_DIR,
) -> None:
    """Verify an explorer evidence zip offline (signatures, Merkle proofs, headers, commit
    certificates; the genesis validator set of --dir is trusted when it is there). Exit 0
    valid, 1 invalid."""
    command = [sys.executable, "-m", "explorer", "verify-evidence", str(evidence_file)]
    os.execve(sys.executable, [*command, "--dir", str(directory), *ctx.args], dict(os.environ))


def _split_dir_option(args: list[str]) -> tuple[list[str], Path]:
    """``args`` without the chain directory option (``--dir DIR``, ``--dir=DIR``, ``-d
    DIR``, anywhere among them), and that directory (DEFAULT_DIR if absent)."""
    rest: list[str] = []
    directory = DEFAULT_DIR
    position = 0
    while position < len(args):
        arg = args[position]
        if arg in ("--dir", "-d"):
            if position + 1 >= len(args):
                raise fail(f"{arg} needs a directory")
            directory = Path(args[position + 1])
            position += 2
            continue
        if arg.startswith("--dir="):
            directory = Path(arg.removeprefix("--dir="))
        else:
            rest.append(arg)
        position += 1
    return rest, directory
