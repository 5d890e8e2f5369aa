"""A bounded memory of SM2 signatures that verified, keyed by exactly what was verified (the
public key, the signed bytes and the signature), so a signature shared by many proofs (a
bulk request signed once by its department: one signature over the Merkle root of all its
records) is checked once, not once per record. Only successes are kept: a signature that
fails is checked again every time, and a different key, message or signature is a
different entry."""

from __future__ import annotations

import threading
from collections import OrderedDict

from chain.crypto import PublicKey


class SignatureMemory:
    """Thread-safe; least recently used entries go first beyond ``capacity``."""

    def __init__(self, capacity: int = 4096) -> None:
        """Remember at most ``capacity`` verified signatures."""
        self.capacity = capacity
        self._seen: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, public_key: bytes, signature: bytes, message: bytes) -> None:
        """Verify ``signature`` over ``message`` by ``public_key`` (raises
        :class:`chain.errors.ChainError` as :meth:`PublicKey.verify` does), unless that very
        triple verified before."""
        entry = (bytes(public_key), bytes(message), bytes(signature))
        with self._lock:
            if entry in self._seen:
                self._seen.move_to_end(entry)
                return
        PublicKey.from_bytes(entry[0]).verify(entry[2], entry[1])
        with self._lock:
            self._seen[entry] = None
            self._seen.move_to_end(entry)
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
