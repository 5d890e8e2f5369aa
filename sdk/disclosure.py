"""Selective disclosure of a notarized record: its holder shows chosen fields (and, if
they wish, the metadata) with their salts and the record's proof bundle; anyone checks
offline that the values are the ones committed to, while every field not disclosed stays a
salted hash that no guess can be checked against.

    disclosure = disclose(bundle, {"holder_id": "110105194912310021"}, salts)
    verify_disclosure(disclosure, validator_set, chain_id=chain_id).raise_for_failure()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.commit import ValidatorSet
from sdk.bundle import ProofBundle, verify_bundle
from sdk.bundle_links import BundleVerdict
from sdk.commitments import commitment_salt, field_hash_forms, salted_metadata_hash
from sdk.errors import SdkError
from sdk.record_signing import RecordSalts


class DisclosureError(SdkError):
    """A disclosure that does not match the bundle it names: a value or salt that does not
    reproduce the committed hash, or a field the record does not have."""


@dataclass(frozen=True)
class Disclosure:
    """Chosen values of one record, their salts, and the record's proof bundle."""

    bundle: ProofBundle
    """The record's proof bundle."""
    fields: Mapping[str, Any]
    """The disclosed fields' values, by name."""
    field_salts: Mapping[str, bytes]
    """Their salts."""
    metadata: Mapping[str, Any] | None = None
    """The metadata, if disclosed."""
    metadata_salt: bytes | None = None
    """Its salt, if disclosed."""

    def to_json(self) -> dict[str, Any]:
        """The disclosure as JSON values."""
        value: dict[str, Any] = {
            "bundle": self.bundle.to_json(),
            "fields": dict(self.fields),
            "fieldSalts": {name: salt.hex() for name, salt in self.field_salts.items()},
        }
        if self.metadata is not None and self.metadata_salt is not None:
            value["metadata"] = dict(self.metadata)
            value["metadataSalt"] = self.metadata_salt.hex()
        return value

    @classmethod
    def from_json(cls, value: Any) -> Disclosure:
        """Parse :meth:`to_json` output; raises DisclosureError on anything else."""
        try:
            salt = value.get("metadataSalt")
            return cls(
                bundle=ProofBundle.from_json(value["bundle"]),
                fields=dict(value["fields"]),
                field_salts={
                    name: commitment_salt(s) for name, s in dict(value["fieldSalts"]).items()
                },
                metadata=None if salt is None else dict(value["metadata"]),
                metadata_salt=None if salt is None else commitment_salt(salt),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DisclosureError(f"not a disclosure: {exc}") from exc


@dataclass(frozen=True)
class DisclosureVerdict:
    """The bundle's verdict and whether every disclosed value matches its commitment."""

    bundle: BundleVerdict
    """Every link of the proof bundle."""
    mismatches: tuple[str, ...] = field(default=())
    """Disclosed items (field names, or ``metadata``) that do not match."""

    @property
    def valid(self) -> bool:
        """The bundle verifies and every disclosed value matches."""
        return self.bundle.valid and not self.mismatches

    def raise_for_failure(self) -> None:
        """Return if valid; raise DisclosureError otherwise."""
        if not self.bundle.valid:
            self.bundle.raise_for_failure()
        if self.mismatches:
            raise DisclosureError(f"disclosed values do not match: {', '.join(self.mismatches)}")


def _mismatches(disclosure: Disclosure) -> tuple[str, ...]:
    committed = dict(disclosure.bundle.record.field_hashes)
    wrong = [
        name
        for name, value in sorted(disclosure.fields.items())
        if name not in committed
        or name not in disclosure.field_salts
        or committed[name] not in field_hash_forms(name, value, disclosure.field_salts[name])
    ]
    if disclosure.metadata is not None:
        salt = disclosure.metadata_salt
        if (
            salt is None
            or disclosure.bundle.record.department_key is None
            or salted_metadata_hash(disclosure.metadata, salt)
            != disclosure.bundle.record.metadata_hash
        ):
            wrong.append("metadata")
    return tuple(wrong)


def disclose(
    bundle: ProofBundle,
    fields: Mapping[str, Any],
    salts: RecordSalts | Mapping[str, bytes | str],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Disclosure:
    """A disclosure of ``fields`` (name → value) of the record of ``bundle``, and of its
    ``metadata`` if given. ``salts``: the record's :class:`RecordSalts`, or the salts of the
    fields by name (hex or bytes). Raises DisclosureError if a value or salt does not
    reproduce the committed hash (nothing wrong is ever handed out)."""
    field_salts: dict[str, bytes | str]
    if isinstance(salts, RecordSalts):
        field_salts, metadata_salt = dict(salts.fields), salts.metadata
    else:
        field_salts, metadata_salt = dict(salts), None
    try:
        chosen = {name: commitment_salt(field_salts[name]) for name in fields}
    except KeyError as exc:
        raise DisclosureError(f"no salt for field {exc}") from None
    except ValueError as exc:
        raise DisclosureError(str(exc)) from None
    disclosure = Disclosure(
        bundle=bundle,
        fields=dict(fields),
        field_salts=chosen,
        metadata=None if metadata is None else dict(metadata),
        metadata_salt=None if metadata is None else metadata_salt,
    )
    wrong = _mismatches(disclosure)
    if wrong:
        raise DisclosureError(f"these do not match the record's commitment: {', '.join(wrong)}")
    return disclosure


def verify_disclosure(
    disclosure: Disclosure,
    validator_set: ValidatorSet,
    *,
    chain_id: int,
    notary: bytes | None = None,
) -> DisclosureVerdict:
    """Check a disclosure offline: the bundle verifies against the validator set and chain
    id the verifier trusts (:func:`sdk.bundle.verify_bundle`), and every disclosed value,
    with its salt, reproduces the hash the record committed to. Nothing about the fields
    not disclosed is revealed or needed."""
    verdict = verify_bundle(disclosure.bundle, validator_set, chain_id=chain_id, notary=notary)
    return DisclosureVerdict(bundle=verdict, mismatches=_mismatches(disclosure))


__all__ = [
    "Disclosure",
    "DisclosureError",
    "DisclosureVerdict",
    "RecordSalts",
    "disclose",
    "verify_disclosure",
]
