"""Personal data of licenses at rest: the holder's identifier and the salt of its on-chain
commitment are sealed with SM4 under the registry's data key, so a copy of the database
confirms no guessed resident ID; wherever the identifier is shown it is masked; the
registry itself, holding the key, still opens them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from registry_harness import CLIENT_USCC
from sqlalchemy import text
from test_department_records import REGION, resident_ids
from test_licenses import Registry, license_request, make_registry, new_identifier

from contracts.trust import holder_commitment
from registry.data_vault import DataVault, VaultError, is_sealed, mask_identifier
from registry.license_service import LicenseService
from registry.models import License
from registry.settings import RegistrySettings

HOLDER_ID = resident_ids()[208]


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    yield from make_registry(settings)


def test_a_guessed_resident_id_is_not_confirmed_by_a_copy_of_the_database(
    registry: Registry,
) -> None:
    client = registry.trust_client()
    body = license_request(
        new_identifier(), holder_id_type="resident_id", holder_id=HOLDER_ID, holder_name="张三"
    )
    issued = client.issue_license(body)
    assert issued.recorded_status == "issued"
    assert (
        issued.metadata is not None
        and issued.metadata["holder_id"] == "1101**********" + (HOLDER_ID[-4:])
    )
    with registry.db.session() as session:
        row = (
            session.execute(
                text("SELECT * FROM licenses WHERE identifier = :id"), {"id": issued.identifier}
            )
            .mappings()
            .one()
        )
    stored = " ".join(str(value) for value in row.values())
    assert HOLDER_ID not in stored
    assert is_sealed(row["salt"]) and is_sealed(row["holder_id_sealed"])
    # Every candidate of the district and birth date, with every 16- or 32-byte value the
    # row holds as the salt: none reproduces the holder commitment.
    chunks = {
        bytes.fromhex(token[start : start + size])
        for value in row.values()
        if isinstance(value, str)
        for token in value.split()
        if all(c in "0123456789abcdef" for c in token)
        for size in (32, 64)
        for start in range(0, len(token) - size + 1, size)
    }
    assert chunks
    assert not [
        guess
        for guess, salt in itertools.product(resident_ids(), chunks)
        if holder_commitment(salt, guess).hex() == row["holder_commitment"]
    ]
    assert HOLDER_ID.startswith(REGION)

    # The verify page never shows it; the registry opens it with its key.
    page = registry.http.get(f"/v/{issued.identifier}")
    assert page.status_code == 200 and HOLDER_ID not in page.text
    with registry.db.session() as session:
        license_row = session.get_one(License, issued.identifier)
        session.expunge(license_row)
    service = LicenseService(registry.db, registry.http.app.state.registry.chain)  # type: ignore[attr-defined]
    holder_id, salt = service.holder_secrets(license_row)
    assert holder_id == HOLDER_ID
    assert holder_commitment(salt, holder_id).hex() == row["holder_commitment"]


def test_sealed_values_open_only_with_the_key_that_sealed_them() -> None:
    from chain.crypto import PrivateKey

    vault, other = (DataVault.for_signing_key(PrivateKey.generate()) for _ in range(2))
    sealed = vault.seal(HOLDER_ID.encode())
    assert vault.open(sealed) == HOLDER_ID.encode()
    assert vault.seal(HOLDER_ID.encode()) != sealed, "a fresh IV every time"
    with pytest.raises(VaultError):
        other.open(sealed)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(VaultError):
        vault.open(tampered)
    assert mask_identifier("440301199001011234") == "4403**********1234"
    assert mask_identifier(CLIENT_USCC) == "1110**********338W"
