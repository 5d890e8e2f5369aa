"""A node backup carries the keys its validator rotated to (the keyring beside its keystore),
checked by digest like every other file, and a restore puts them back where the node looks
for them; without them a restored validator would sign nothing once the chain's set holds
its new key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_cli import build_blocks, invoke

from node.backup import BACKUP_KEYRING, BackupError, backup_node, read_backup, restore_node
from node.chain_dir import ChainDir
from node.config import load_config
from node.keyring import keyring_dir


@pytest.fixture
def chain_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "chain"
    code, output = invoke("init", str(directory), "--dev")
    assert code == 0, output
    build_blocks(directory, 1)
    return directory


def rotated_key(chain_dir: Path) -> Path:
    """A keystore in the validator's keyring, as ``lianxin validators rotate-key`` writes it."""
    config = load_config(ChainDir(chain_dir).config)
    assert config.validator_keystore is not None
    keyring = keyring_dir(config.validator_keystore)
    keyring.mkdir()
    placed = keyring / ("0x" + "ab" * 20 + ".json")
    shutil.copyfile(config.validator_keystore, placed)
    return placed


def test_the_keyring_is_backed_up_checked_and_restored(chain_dir: Path, tmp_path: Path) -> None:
    placed = rotated_key(chain_dir)
    backup = tmp_path / "backup"
    manifest = backup_node(ChainDir(chain_dir).config, backup)
    name = f"{BACKUP_KEYRING}/{placed.name}"
    assert name in manifest.files
    assert (backup / name).read_bytes() == placed.read_bytes()

    # Restored onto a fresh folder with the same layout: the keyring is where the node reads it.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copyfile(ChainDir(chain_dir).config, fresh / "node.toml")
    config = load_config(fresh / "node.toml")
    if config.validator_keystore is not None and config.validator_keystore.exists():
        pytest.skip("the configuration names keystore paths outside the node folder")
    restore_node(backup, fresh)
    assert config.validator_keystore is not None
    restored = keyring_dir(config.validator_keystore) / placed.name
    assert restored.read_bytes() == placed.read_bytes()


def test_an_altered_keyring_file_fails_the_backup_check(chain_dir: Path, tmp_path: Path) -> None:
    placed = rotated_key(chain_dir)
    backup = tmp_path / "backup"
    backup_node(ChainDir(chain_dir).config, backup)
    target = backup / BACKUP_KEYRING / placed.name
    target.write_bytes(target.read_bytes()[:-2] + b"}\n")
    with pytest.raises(BackupError, match=placed.name):
        read_backup(backup)


def test_a_validator_without_a_keyring_backs_up_as_before(chain_dir: Path, tmp_path: Path) -> None:
    manifest = backup_node(ChainDir(chain_dir).config, tmp_path / "backup")
    assert not any(name.startswith(BACKUP_KEYRING) for name in manifest.files)
    assert not (tmp_path / "backup" / BACKUP_KEYRING).exists()
