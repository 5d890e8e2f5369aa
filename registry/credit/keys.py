"""The registry's secrets for public credit, all derived (HMAC-SM3) from its signing key,
as :class:`registry.data_vault.DataVault` derives its data key: a copy of the database alone
opens nothing and links nothing.

- the **subject key** of a subject: a keyed hash of its identifier (a USCC, a resident ID),
  the only form in which the database can find a natural person's records;
- the **salts** of a record's per-field commitments: derived from the record's identity and
  the field's name, so they are never stored, the same for every version of the record (an
  unchanged field keeps its hash across a correction), and unknown to anyone without the
  registry's key (a guess of an identity number cannot be checked against its hash);
- the **vault** that seals repair evidence.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from chain.crypto import PrivateKey
from credit.field_hashes import SaltContext, derived_salt
from credit.subjects import Subject

if TYPE_CHECKING:
    from registry.data_vault import DataVault

__all__ = ["CreditKeys", "subject_identifier"]

CREDIT_KEY_LABEL = b"lianxin/registry-credit-key/v1"
"""Domain separation of the credit master key derived from the signing key."""


def subject_identifier(subject: Subject) -> str:
    """The identifier a subject is known by: a natural person's identity number, else the
    organisation's USCC (or its first older code, or its name when it has none)."""
    if subject.is_natural_person:
        return (subject.id_number or subject.name).upper()
    for code in (
        subject.uscc,
        subject.registration_number,
        subject.organisation_code,
        subject.tax_number,
        subject.institution_number,
        subject.social_organisation_number,
    ):
        if code:
            return code.upper()
    return subject.name


class CreditKeys:
    """Keyed hashes and salts of public credit, under one master secret."""

    def __init__(self, master: bytes) -> None:
        """Derive every key from ``master`` (32 secret bytes); see :meth:`for_signing_key`."""
        self._subject_key = hmac.new(master, b"subject", "sm3").digest()
        self._salt_key = hmac.new(master, b"field salts", "sm3").digest()
        self._vault_key = hmac.new(master, b"vault", "sm3").digest()

    @property
    def vault(self) -> DataVault:
        """Seals repair evidence. Made when asked (rarely: a repair's evidence), so that
        keys and what holds them (an import's worker process is sent them) need not import
        the vault's modules, which bring in the HTTP stack's (a third of a second)."""
        from registry.data_vault import DataVault

        return DataVault(self._vault_key)

    @classmethod
    def for_signing_key(cls, key: PrivateKey) -> CreditKeys:
        """The keys derived from the registry's signing key."""
        return cls(hmac.new(key.to_bytes(), CREDIT_KEY_LABEL, "sm3").digest())

    def subject_key(self, identifier: str) -> str:
        """The keyed hash (hex) that names the subject ``identifier`` in the database;
        case and surrounding spaces do not matter."""
        text = identifier.strip().upper().encode()
        return hmac.new(self._subject_key, text, "sm3").hexdigest()

    def salt_context(self, record_id: bytes) -> SaltContext:
        """An SM3 context fed record ``record_id``'s salt seed (an HMAC-SM3 of the identity
        under the salt key): the salt of a field is the first 16 bytes of SM3 of the seed
        and the field's name (:func:`credit.field_hashes.derived_salt`), each an output of
        its own, so disclosing one field's salt tells nothing of the others'.
        :func:`credit.field_hashes.text_field_hashes_under` hashes a record's fields under
        them without a call per salt."""
        return hashlib.new("sm3", hmac.new(self._salt_key, record_id, "sm3").digest())

    def salts(self, record_id: bytes) -> Callable[[str], bytes]:
        """The salt of each field of record ``record_id`` (16 bytes, by field name)."""
        start = self.salt_context(record_id)

        def salt(name: str) -> bytes:
            return derived_salt(start, name)

        return salt

    def salts_of(self, record_id: bytes, names: Iterable[str]) -> dict[str, bytes]:
        """:meth:`salts` of every name in ``names``."""
        salt = self.salts(record_id)
        return {name: salt(name) for name in names}
