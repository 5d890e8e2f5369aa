"""Durable storage of the node: the LMDB implementation of :class:`chain.storage.BlockStore`."""

from node.storage.lmdb_store import DEFAULT_MAP_SIZE, LmdbBlockStore

__all__ = ["DEFAULT_MAP_SIZE", "LmdbBlockStore"]
