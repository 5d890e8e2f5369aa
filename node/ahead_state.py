"""The state as of the ledger's tip during group commit (see :mod:`node.ledger`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from chain.storage import KeyValueReader


class AheadState:
    """The state as of the tip: writes of executed blocks not yet durable, over the store.
    State keys are hashes of their values, so a key found in either place is right."""

    def __init__(
        self, pending_writes: Callable[[], Mapping[bytes, bytes]], store_state: KeyValueReader
    ) -> None:
        """``pending_writes`` answers the writes not yet durable (the ledger replaces its
        mapping as blocks are written); ``store_state`` reads the committed state."""
        self._pending_writes = pending_writes
        self._store_state = store_state

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key`` as of the tip, or ``None``."""
        value = self._pending_writes().get(key)
        return self._store_state.get(key) if value is None else value
