"""`lianxin node backup` and `lianxin node restore` (what they copy and why a restored
validator waits for its operator: :mod:`node.backup`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli_common import DEFAULT_DIR, DirOption, JsonOption, emit, errors, fail

if TYPE_CHECKING:
    from node.backup import BackupManifest


def _summary(manifest: BackupManifest, where: Path) -> dict[str, object]:
    return {
        "path": str(where),
        "chainId": manifest.chain_id,
        "genesisHash": manifest.genesis_hash,
        "headHeight": manifest.head_height,
        "walLastHeight": manifest.wal_last_height,
        "walLastRound": manifest.wal_last_round,
        "validator": manifest.validator,
        "files": len(manifest.files),
        "bytes": sum(int(entry["bytes"]) for entry in manifest.files.values()),
    }


def register(node_app: typer.Typer) -> None:
    """Add the backup and restore commands to ``lianxin node``."""

    @node_app.command("backup")
    def node_backup(
        dest: Annotated[Path, typer.Argument(help="new directory to write the backup into")],
        directory: DirOption = DEFAULT_DIR,
        as_json: JsonOption = False,
    ) -> None:
        """Copy the node's block store, mempool, consensus WAL, configuration and (still
        encrypted) validator key into DEST, while it runs: the store is copied inside one
        LMDB read transaction, so the copy is one committed state. The keystore password is
        not copied."""
        from rich.progress import Progress, SpinnerColumn, TextColumn

        from chain.errors import ChainError
        from node.backup import backup_node
        from node.chain_dir import ChainDir

        config = ChainDir(directory).config
        if not config.exists():
            raise fail(f"{config} not found")
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=errors, disable=as_json
        ) as progress:
            task = progress.add_task("backing up", total=None)
            try:
                manifest = backup_node(
                    config, dest, step=lambda what: progress.update(task, description=what)
                )
            except ChainError as exc:
                raise fail(str(exc)) from exc
        emit(_summary(manifest, dest), as_json)

    @node_app.command("restore")
    def node_restore(
        backup: Annotated[Path, typer.Argument(help="a directory made by `lianxin node backup`")],
        directory: DirOption = DEFAULT_DIR,
        as_json: JsonOption = False,
    ) -> None:
        """Restore BACKUP into the node directory --dir (its data directory must hold no
        chain). Every file is checked against the backup's SM3 digests first. Then run
        `lianxin verify-chain --dir DIR` and start the node: it catches up by block sync. A
        validator starts only with --confirm-restored-wal (double-sign risk: see its text)."""
        from rich.progress import Progress, SpinnerColumn, TextColumn

        from chain.errors import ChainError
        from node.backup import restore_node

        directory.mkdir(parents=True, exist_ok=True)
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=errors, disable=as_json
        ) as progress:
            task = progress.add_task("restoring", total=None)
            try:
                manifest = restore_node(
                    backup, directory, step=lambda what: progress.update(task, description=what)
                )
            except ChainError as exc:
                raise fail(str(exc)) from exc
        emit(_summary(manifest, directory), as_json)
