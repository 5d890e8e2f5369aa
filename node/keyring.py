"""A validator's consensus keys across key rotations.

A validator node is configured with one keystore (``validator_keystore``); its key is also the
node's p2p identity, the key its peers list it by, for the node's whole life. When the
validator rotates its consensus key through governance (``lianxin validators rotate-key``),
the new key's keystore is written, in the same encrypted format and under the same password,
into the keyring folder next to it: ``<keystore stem>.keys/`` (``node-2/validator.keys/`` for
``node-2/validator.json``), one file per key. At every height the consensus driver signs with
the keyring key that the height's validator set holds: the configured key until the rotation
rules, the new key from its effective height on, without a restart. The folder is read again
only when no key held so far is in the set, and a file is decrypted once (again only when it
changed), so following the chain as an observer costs a directory listing per height.

A keystore that does not decrypt, or is not a keystore, is skipped with a warning and counted
in :attr:`Keyring.refused`; it never stops the node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from chain.commit import ValidatorSet
from chain.crypto import PrivateKey
from chain.crypto.keystore import decrypt_keystore
from chain.errors import ChainError
from chain.primitives import Address

log = logging.getLogger(__name__)

KEYRING_SUFFIX = ".keys"
"""The keyring folder of keystore ``X/name.json`` is ``X/name.keys``."""

MAX_KEYRING_FILES = 256
"""Most keystores a keyring folder is read for (a bound on the work of one scan)."""

MAX_KEYSTORE_BYTES = 64 * 1024
"""Largest keystore file read (a keystore is well under 1 KiB)."""


def keyring_dir(keystore: Path) -> Path:
    """The keyring folder that holds the rotated keys of the validator keystore ``keystore``."""
    return keystore.with_name(keystore.stem + KEYRING_SUFFIX)


def keyring_file(keystore: Path, address: Address) -> Path:
    """Where the keystore of the rotated key ``address`` lives in ``keystore``'s keyring."""
    return keyring_dir(keystore) / f"0x{bytes(address).hex()}.json"


@dataclass
class Keyring:
    """The consensus keys one validator node may sign with: its configured key and every key
    found in its keyring folder. Used from the event loop only."""

    configured: PrivateKey
    """The key of ``validator_keystore`` (the node's p2p identity)."""
    directory: Path | None
    """The keyring folder (``None``: the configured key only)."""
    password: bytes
    """The keystore password (the validator keystore's)."""
    keys: dict[Address, PrivateKey] = field(default_factory=dict)
    """Every key held, by address."""
    refused: int = 0
    """Keystores skipped because they did not decrypt or could not be read."""
    _read: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys.setdefault(self.configured.public_key.address, self.configured)

    @classmethod
    def for_keystore(
        cls, configured: PrivateKey, keystore: Path | None, password: bytes
    ) -> Keyring:
        """The keyring of the node whose validator keystore is ``keystore``, read once."""
        keyring = cls(configured, None if keystore is None else keyring_dir(keystore), password)
        keyring.scan()
        return keyring

    def key_for(self, validators: ValidatorSet) -> PrivateKey | None:
        """The held key that ``validators`` holds (the folder is read again if none is);
        ``None`` when the set holds none of this node's keys."""
        for _ in range(2):
            for address in self.keys:
                if address in validators.by_address:
                    return self.keys[address]
            if not self.scan():
                return None
        return None

    def scan(self) -> bool:
        """Read the keystores of the keyring folder that are new or changed; returns whether a
        key was added."""
        if self.directory is None or not self.directory.is_dir():
            return False
        added = False
        try:
            paths = sorted(self.directory.glob("*.json"))[:MAX_KEYRING_FILES]
        except OSError as exc:
            log.warning("keyring: cannot list %s: %s", self.directory, exc)
            return False
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            stamp = (stat.st_mtime_ns, stat.st_size)
            if self._read.get(path.name) == stamp:
                continue
            self._read[path.name] = stamp
            key = self._load(path, stat.st_size)
            if key is not None and key.public_key.address not in self.keys:
                self.keys[key.public_key.address] = key
                added = True
                log.info("keyring: holds key 0x%s (%s)", key.public_key.address.hex(), path.name)
        return added

    def _load(self, path: Path, size: int) -> PrivateKey | None:
        if size > MAX_KEYSTORE_BYTES:
            self.refused += 1
            log.warning("keyring: %s is too large for a keystore; skipped", path)
            return None
        try:
            return decrypt_keystore(path.read_bytes(), self.password)
        except (OSError, ChainError) as exc:
            self.refused += 1
            log.warning("keyring: %s does not open: %s; skipped", path, exc)
            return None
