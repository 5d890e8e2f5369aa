"""Decoding by ABI: every event of every system and trust contract, and their calls, come
back with the values they were encoded from; logs and calls the explorer does not know are
left undecoded rather than guessed."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from chain.primitives import Address, Hash32
from chain.types import Log
from explorer.decoding import ContractAbi, ContractBook, json_value, known_contract_names

SAMPLES: dict[str, Any] = {
    "address": "0x" + "ab" * 20,
    "bool": True,
    "string": "区行政审批局",
    "bytes": b"\x04" + b"\x01" * 64,
    "bytes18": b"11100000000013338W",
    "bytes32": b"\x22" * 32,
    "bytes32[]": [b"\x33" * 32, b"\x44" * 32],
}


def sample(abi_type: str) -> Any:
    """A value of ``abi_type`` for the round trip."""
    if abi_type in SAMPLES:
        return SAMPLES[abi_type]
    if abi_type.startswith(("uint", "int")):
        return 7
    raise AssertionError(f"no sample for ABI type {abi_type}")


def events() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name in known_contract_names():
        for entry in ContractAbi(name).events.values():
            found.append((name, dict(entry)))
    return found


def test_every_trust_and_system_contract_is_known() -> None:
    names = set(known_contract_names())
    assert {
        "Permissions",
        "ValidatorGovernance",
        "IssuerRegistry",
        "Notary",
        "LicenseRegistry",
    } <= names


@pytest.mark.parametrize(
    ("contract", "entry"), events(), ids=lambda v: v if isinstance(v, str) else v["name"]
)
def test_each_event_decodes_to_the_values_it_was_made_from(
    contract: str, entry: dict[str, Any]
) -> None:
    address = Address(b"\x99" * 20)
    book = ContractBook([ContractAbi(contract)])
    book.place(address, contract)
    types = [p["type"] for p in entry["inputs"]]
    signature = f"{entry['name']}({','.join(types)})"
    indexed = [p for p in entry["inputs"] if p["indexed"]]
    plain = [p for p in entry["inputs"] if not p["indexed"]]
    topics = [Hash32(keccak(text=signature))]
    topics += [Hash32(encode([p["type"]], [sample(p["type"])])) for p in indexed]
    data = encode([p["type"] for p in plain], [sample(p["type"]) for p in plain])
    decoded = book.decode_log(Log(address=address, topics=tuple(topics), data=data))
    assert decoded is not None
    assert (decoded.contract, decoded.name) == (contract, entry["name"])
    expected = {p["name"]: json_value(sample(p["type"]), p["type"]) for p in entry["inputs"]}
    assert dict(decoded.args) == expected
    assert list(decoded.args) == [p["name"] for p in entry["inputs"]]


def test_a_uscc_reads_as_its_characters_and_addresses_as_hex() -> None:
    assert json_value(b"11100000000013338W", "bytes18") == "11100000000013338W"
    assert json_value("0xABab" + "00" * 18, "address") == "0xabab" + "00" * 18
    assert json_value(2**64 - 1, "uint64") == str(2**64 - 1)


def test_calls_of_each_contract_decode_by_selector() -> None:
    for name in known_contract_names():
        abi = ContractAbi(name)
        book = ContractBook([abi])
        book.place(b"\x01" * 20, name)
        for selector, entry in abi.functions.items():
            types = [p["type"] for p in entry["inputs"]]
            if any(t not in SAMPLES and not t.startswith(("uint", "int")) for t in types):
                continue
            data = selector + encode(types, [sample(t) for t in types])
            decoded = book.decode_call(b"\x01" * 20, data)
            assert decoded is not None and decoded.name == entry["name"], (name, entry["name"])


def test_unknown_emitters_topics_and_garbage_are_not_decoded() -> None:
    book = ContractBook([ContractAbi("Notary")])
    notary = Address(b"\x05" * 20)
    book.place(notary, "Notary")
    anchored = next(
        e for e in ContractAbi("Notary").events.values() if e["name"] == "BatchAnchored"
    )
    topic = Hash32(keccak(text="BatchAnchored(bytes32,address,bytes18,uint64,bytes32)"))
    assert anchored["name"] == "BatchAnchored"
    stranger = Address(b"\x06" * 20)
    good_topics = (
        topic,
        Hash32(b"\x01" * 32),
        Hash32(b"\x00" * 12 + b"\x02" * 20),
        Hash32(b"1" * 18 + b"\x00" * 14),
    )
    assert book.decode_log(Log(address=stranger, topics=good_topics, data=b"")) is None
    assert book.decode_log(Log(address=notary, topics=(Hash32(b"\x07" * 32),), data=b"")) is None
    assert book.decode_log(Log(address=notary, topics=good_topics, data=b"\x01\x02")) is None
    assert book.decode_log(Log(address=notary, topics=good_topics[:2], data=b"")) is None
    assert book.decode_call(notary, b"\xde\xad\xbe\xef") is None
    assert book.decode_call(stranger, b"") is None


def test_a_deployment_is_recognised_by_its_init_code() -> None:
    book = ContractBook(ContractAbi(name) for name in known_contract_names())
    for name in ("IssuerRegistry", "Notary", "LicenseRegistry"):
        init_code = ContractAbi(name).bytecode + b"\x00" * 32
        assert book.recognise_deployment(init_code) == name
    assert book.recognise_deployment(b"\x60\x80") is None
