"""First start of a registry on a chain: deploy IssuerRegistry, Notary and LicenseRegistry
through the SDK with the governance account, register the registry's department and its
signing key as an issuer, and record the addresses (and the chain id and validator set) in
the registry database. Running it again reuses what is recorded and registered."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.trust import OPEN_ENDED, ContractCodec, Role, uscc_bytes
from registry.chain_gateway import (
    ISSUER_REGISTRY_KEY,
    LICENSE_REGISTRY_KEY,
    NOTARY_KEY,
    ChainGateway,
)
from registry.errors import RegistryError
from sdk.account import Sm2Account
from sdk.chain_reader import CallReverted
from sdk.identifiers import validate_uscc

ISSUER_REGISTRY = ContractCodec.load("IssuerRegistry")
NOTARY = ContractCodec.load("Notary")
LICENSE_REGISTRY = ContractCodec.load("LicenseRegistry")


class BootstrapFailed(RegistryError):
    """A bootstrap transaction reverted."""

    code = "bootstrap_failed"


@dataclass(frozen=True)
class BootstrapResult:
    """What the bootstrap left on chain and in the database."""

    issuer_registry: str
    """IssuerRegistry address (0x hex)."""
    notary: str
    """Notary address."""
    license_registry: str
    """LicenseRegistry address."""
    uscc: str
    """The registry's department."""
    issuer_account: str
    """The registry's signing account, an ISSUER and REVOKER of that department."""


def bootstrap(
    gateway: ChainGateway, governance: Sm2Account, *, uscc: str, department_name: str
) -> BootstrapResult:
    """Deploy what is missing, register the department and the signer's key, and record
    the addresses. ``governance`` must be allowed to deploy contracts."""
    uscc = validate_uscc(uscc)
    reader = gateway.reader

    def deploy(name: str, codec: ContractCodec, key: str, *args: object) -> bytes:
        recorded = gateway.recorded(key)
        if recorded is not None:
            return bytes.fromhex(recorded.removeprefix("0x"))
        receipt = reader.transact(governance, to=None, data=codec.deploy_data(*args))
        if receipt.status != 1 or receipt.contract_address is None:
            raise BootstrapFailed(f"deploying {name} reverted")
        gateway.record(key, "0x" + receipt.contract_address.hex())
        return receipt.contract_address

    issuer_registry = deploy(
        "IssuerRegistry", ISSUER_REGISTRY, ISSUER_REGISTRY_KEY, governance.address
    )
    notary = deploy("Notary", NOTARY, NOTARY_KEY, issuer_registry)
    licenses = deploy("LicenseRegistry", LICENSE_REGISTRY, LICENSE_REGISTRY_KEY, issuer_registry)

    department = uscc_bytes(uscc)
    try:
        reader.call(issuer_registry, ISSUER_REGISTRY.encode_call("departmentInfo", department))
    except CallReverted:
        _send(
            gateway,
            governance,
            issuer_registry,
            ISSUER_REGISTRY.encode_call("registerDepartment", department, department_name),
        )
    signer = gateway.signer()
    (owner, _key_id) = ISSUER_REGISTRY.decode_result(
        "departmentOf",
        reader.call(issuer_registry, ISSUER_REGISTRY.encode_call("departmentOf", signer.address)),
    )
    if owner == bytes(18):
        _send(
            gateway,
            governance,
            issuer_registry,
            ISSUER_REGISTRY.encode_call(
                "addKey",
                department,
                bytes(signer.public_key_bytes),
                int(Role.ISSUER | Role.REVOKER),
                0,
                OPEN_ENDED,
            ),
        )
    elif owner != department:
        raise BootstrapFailed(f"the signing key belongs to department {owner!r}")
    gateway.chain_id()
    gateway.validator_set()
    return BootstrapResult(
        issuer_registry="0x" + issuer_registry.hex(),
        notary="0x" + notary.hex(),
        license_registry="0x" + licenses.hex(),
        uscc=uscc,
        issuer_account="0x" + signer.address.hex(),
    )


def _send(gateway: ChainGateway, account: Sm2Account, to: bytes, data: bytes) -> None:
    receipt = gateway.reader.transact(account, to=to, data=data)
    if receipt.status != 1:
        error = ISSUER_REGISTRY.decode_error(receipt.output) if receipt.output else None
        raise BootstrapFailed(f"transaction reverted: {error}")
