"""E-license metadata (电子证照元数据, GB/T 36903-2018): its types, canonical encoding and
salted hash live in :mod:`sdk.license_metadata`, because the issuing department computes
the hash itself to sign the license's commitment; re-exported here for the registry."""

from __future__ import annotations

from sdk.license_metadata import (
    CONTENT_MAX_FIELDS,
    METADATA_HASH_PREFIX,
    NAME_MAX_SIZE,
    SALT_MAX_SIZE,
    VALUE_MAX_SIZE,
    ContentField,
    HolderIdType,
    InvalidMetadata,
    LicenseMetadata,
    chain_valid_until,
    metadata_hash,
)

__all__ = [
    "CONTENT_MAX_FIELDS",
    "METADATA_HASH_PREFIX",
    "NAME_MAX_SIZE",
    "SALT_MAX_SIZE",
    "VALUE_MAX_SIZE",
    "ContentField",
    "HolderIdType",
    "InvalidMetadata",
    "LicenseMetadata",
    "chain_valid_until",
    "metadata_hash",
]
