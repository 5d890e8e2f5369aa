"""Backup and restore of one node: a consistent hot copy while it runs, and a restore onto a
fresh directory that refuses to let a validator sign again until its operator confirms.

A backup directory holds::

    manifest.json     what was copied: chain id, genesis hash, head height, the last slot
                      of the consensus WAL, and each file's SM3 digest and size
    node.toml         the node's configuration, as it was
    genesis.toml      the chain's genesis
    validator.json    the validator key, still in its SM4 keystore (never decrypted here)
    validator.keys/   the keys a validator rotated to (its keyring), keystores as well
    blocks/           the block store: an LMDB copy (one read transaction, compacted)
    mempool/          accepted transactions not yet committed: an LMDB copy
    consensus.wal     the validator's own signed votes, as far as the file had reached
    upgrades-adopted.json  the parameter schedule the node took on, if it has one

The keystore password is not copied: the operator keeps it apart from the backup.

**Why a restored validator must not just start.** A validator's WAL is what stops it from
signing two different votes in one slot across a crash. A backup's WAL ends where the file
was when it was copied; the node kept voting after that. Restored and started, it resumes
from the older WAL and may sign, in a slot it had already voted in, a different vote — a
double sign, which the other validators see as Byzantine. So a restored validator refuses to
start (:mod:`node.restore_guard`) until the operator confirms that the node it replaces can
never run again and accepts that risk: ``lianxin node start --confirm-restored-wal``. A node
without a validator key signs nothing and starts at once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chain.errors import ChainError
from chain.genesis import genesis_block
from node.config import ConfigError, NodeConfig, load_config
from node.genesis_file import load_genesis
from node.keyring import MAX_KEYRING_FILES, keyring_dir
from node.restore_guard import RESTORED_MARKER
from node.storage.lmdb_copy import copy_environment
from node.storage.lmdb_store import LmdbBlockStore
from node.upgrade_schedule import ADOPTED_FILE
from node.wal import Wal, WalError

FORMAT = 1
MANIFEST = "manifest.json"
BACKUP_KEYRING = "validator.keys"
"""Where a backup keeps the keystores of the keys its validator rotated to."""
_CHUNK = 1 << 20

Step = Callable[[str], None]
"""Told what is being done now (for a progress display)."""


class BackupError(ChainError):
    """A backup that cannot be taken, read or restored."""


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds."""

    format: int
    created_at: float
    """Unix time the copy finished."""
    genesis_hash: str
    chain_id: int
    head_height: int
    """The block store's head in the copy."""
    wal_last_height: int | None
    """Height of the last vote or proposal in the copied WAL (``None``: empty or no WAL)."""
    wal_last_round: int | None
    validator: bool
    files: dict[str, dict[str, Any]]
    """Relative path -> {"sm3": hex, "bytes": size}."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BackupManifest:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise BackupError(f"backup format {data.get('format')!r} is not {FORMAT}")
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise BackupError(f"unreadable {MANIFEST}: {exc}") from exc


def _digest(path: Path) -> dict[str, Any]:
    hasher = hashlib.new("sm3")
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return {"sm3": hasher.hexdigest(), "bytes": path.stat().st_size}


def _copy_file(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    dest.chmod(0o600)


def _wal_last(path: Path) -> tuple[int | None, int | None]:
    if not path.exists():
        return None, None
    try:
        wal = Wal.open(path)
    except WalError as exc:
        raise BackupError(f"the copied consensus WAL is unreadable: {exc}") from exc
    try:
        last = wal.last_message()
    finally:
        wal.close()
    return (None, None) if last is None else (last.height, last.round)


def backup_node(config_path: Path, dest: Path, *, step: Step | None = None) -> BackupManifest:
    """Copy the node configured by ``config_path`` into the new directory ``dest``, while
    the node runs or not. Raises BackupError (``dest`` is then removed)."""
    tell = step or (lambda _what: None)
    try:
        config = load_config(config_path)
    except (ConfigError, ChainError) as exc:
        raise BackupError(str(exc)) from exc
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; back up into a new directory")
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o700)
    try:
        return _backup(config, config_path, dest, tell)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _backup(config: NodeConfig, config_path: Path, dest: Path, tell: Step) -> BackupManifest:
    # The WAL is copied first: whatever the copy of the store holds, the WAL copy is no newer
    # than it is allowed to be behind; the restored node's refusal covers both anyway.
    tell("consensus WAL")
    if config.wal_path.exists():
        _copy_file(config.wal_path, dest / "consensus.wal")
    tell("block store")
    try:
        copy_environment(config.data_dir / "blocks", dest / "blocks")
        if (config.data_dir / "mempool" / "data.mdb").is_file():
            tell("mempool")
            copy_environment(config.data_dir / "mempool", dest / "mempool")
    except ChainError as exc:
        raise BackupError(str(exc)) from exc
    tell("configuration and keys")
    if (config.data_dir / ADOPTED_FILE).is_file():
        # The parameter schedule the node took on: without it a node restored past a
        # scheduled height refuses to start (node.upgrade_schedule).
        _copy_file(config.data_dir / ADOPTED_FILE, dest / ADOPTED_FILE)
    _copy_file(config_path, dest / "node.toml")
    _copy_file(config.genesis, dest / "genesis.toml")
    if config.validator_keystore is not None:
        _copy_file(config.validator_keystore, dest / "validator.json")
        keyring = keyring_dir(config.validator_keystore)
        if keyring.is_dir():
            # Without the keys it rotated to, a restored validator would sign nothing once
            # the chain's set holds its new key.
            _copy_keystores(keyring, dest / BACKUP_KEYRING)
    try:
        genesis = load_genesis(dest / "genesis.toml")
    except (ConfigError, ChainError) as exc:
        raise BackupError(str(exc)) from exc
    with LmdbBlockStore.open(dest / "blocks") as store:
        head = store.head()
    if head is None:
        raise BackupError("the node's block store holds no block")
    wal_height, wal_round = _wal_last(dest / "consensus.wal")
    tell("digests")
    files = {
        str(path.relative_to(dest)): _digest(path)
        for path in sorted(dest.rglob("*"))
        if path.is_file() and path.name != "lock.mdb"
    }
    manifest = BackupManifest(
        format=FORMAT,
        created_at=time.time(),
        genesis_hash=genesis_block(genesis)[0].hash.hex(),
        chain_id=genesis.chain_id,
        head_height=head.height,
        wal_last_height=wal_height,
        wal_last_round=wal_round,
        validator=config.validator_keystore is not None,
        files=files,
    )
    (dest / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def read_backup(backup: Path) -> BackupManifest:
    """The manifest of ``backup``, after checking every file against its digest. Raises
    BackupError naming the first file missing or altered."""
    try:
        manifest = BackupManifest.from_json((backup / MANIFEST).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BackupError(f"{backup} is not a node backup: {exc}") from exc
    for name, expected in manifest.files.items():
        path = backup / name
        if not path.is_file():
            raise BackupError(f"backup file {name} is missing")
        if _digest(path) != expected:
            raise BackupError(f"backup file {name} does not match its SM3 digest")
    return manifest


def restore_node(backup: Path, node_dir: Path, *, step: Step | None = None) -> BackupManifest:
    """Restore ``backup`` into ``node_dir``: its ``node.toml`` (written from the backup if
    absent), genesis and validator keystore where the configuration names them, and the data
    directory, which must not hold a chain. A validator is marked as restored: it will not
    start until its operator confirms (see the module's text). Raises BackupError."""
    tell = step or (lambda _what: None)
    tell("checking the backup")
    manifest = read_backup(backup)
    config_path = node_dir / "node.toml"
    if not config_path.exists():
        _copy_file(backup / "node.toml", config_path)
    try:
        config = load_config(config_path)
    except (ConfigError, ChainError) as exc:
        raise BackupError(str(exc)) from exc
    blocks = config.data_dir / "blocks"
    if blocks.exists() and any(blocks.iterdir()):
        raise BackupError(
            f"{config.data_dir} already holds a chain; restore onto a fresh directory "
            "(move the old data aside first)"
        )
    _restore_genesis(backup, config, manifest)
    keystore = config.validator_keystore
    if manifest.validator and keystore is not None and not keystore.exists():
        _copy_file(backup / "validator.json", keystore)
    if keystore is not None and (backup / BACKUP_KEYRING).is_dir():
        _copy_keystores(backup / BACKUP_KEYRING, keyring_dir(keystore))
    tell("block store")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(blocks, ignore_errors=True)
    _copy_tree(backup / "blocks", blocks)
    if (backup / "mempool").is_dir():
        tell("mempool")
        shutil.rmtree(config.data_dir / "mempool", ignore_errors=True)
        _copy_tree(backup / "mempool", config.data_dir / "mempool")
    if (backup / "consensus.wal").is_file():
        _copy_file(backup / "consensus.wal", config.wal_path)
    if (backup / ADOPTED_FILE).is_file():
        _copy_file(backup / ADOPTED_FILE, config.data_dir / ADOPTED_FILE)
    if config.validator_keystore is not None:
        (config.data_dir / RESTORED_MARKER).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _restore_genesis(backup: Path, config: NodeConfig, manifest: BackupManifest) -> None:
    if not config.genesis.exists():
        _copy_file(backup / "genesis.toml", config.genesis)
        return
    try:
        genesis = load_genesis(config.genesis)
    except (ConfigError, ChainError) as exc:
        raise BackupError(f"cannot read {config.genesis}: {exc}") from exc
    if genesis_block(genesis)[0].hash.hex() != manifest.genesis_hash:
        raise BackupError(f"{config.genesis} is another chain's genesis than the backup's")


def _copy_keystores(source: Path, dest: Path) -> None:
    """Copy the keystore files of keyring ``source`` into ``dest``, keeping any already there
    (a keystore is named by its key's address, so the same name holds the same key)."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.json"))[:MAX_KEYRING_FILES]:
        if path.is_file() and not (dest / path.name).exists():
            _copy_file(path, dest / path.name)


def _copy_tree(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file() and path.name != "lock.mdb":
            _copy_file(path, dest / path.name)
