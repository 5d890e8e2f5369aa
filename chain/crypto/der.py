"""A strict reader and a writer for the few DER shapes SM2 needs (signatures, PKCS#8, SEC1,
SubjectPublicKeyInfo).

The reader accepts only the distinguished encoding: minimal lengths, minimal non-negative
INTEGERs, no trailing bytes. A second encoding of the same value would let one signature be
malleated into another byte string that still verifies, so every alternative is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.errors import CryptoError

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_SEQUENCE = 0x30
TAG_CONTEXT_0 = 0xA0
TAG_CONTEXT_1 = 0xA1


class DerError(CryptoError):
    """Bytes that are not the distinguished encoding of the expected ASN.1 structure."""


@dataclass(frozen=True)
class Element:
    """One DER element: its tag byte and its content octets."""

    tag: int
    """The identifier octet (only single-byte tags are used by the structures read here)."""
    content: bytes
    """The content octets, without tag and length."""


def _encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, content: bytes) -> bytes:
    """Return the DER element with ``tag`` and ``content``."""
    return bytes([tag]) + _encode_length(len(content)) + content


def encode_integer(value: int) -> bytes:
    """Return a non-negative ``value`` as a minimal DER INTEGER."""
    if value < 0:
        raise ValueError("only non-negative integers are encoded")
    # One extra byte when the top bit is set keeps the INTEGER positive.
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return encode(TAG_INTEGER, body)


def encode_sequence(*elements: bytes) -> bytes:
    """Return a DER SEQUENCE of already encoded ``elements``."""
    return encode(TAG_SEQUENCE, b"".join(elements))


def encode_oid(dotted: str) -> bytes:
    """Return the DER OBJECT IDENTIFIER for a dotted string such as ``1.2.156.10197.1.301``."""
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return encode(TAG_OID, bytes(body))


def read_element(data: bytes, offset: int = 0) -> tuple[Element, int]:
    """Read one element of ``data`` at ``offset``; return it and the offset just past it.

    Raises DerError on a truncated element or a length that is not in its minimal form.
    """
    if offset + 2 > len(data):
        raise DerError("truncated DER element")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte DER tags are not used here")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or position + count > len(data):
            raise DerError("bad DER length")
        length = int.from_bytes(data[position : position + count], "big")
        if length < 0x80 or data[position] == 0:
            raise DerError("DER length not in minimal form")
        position += count
    end = position + length
    if end > len(data):
        raise DerError("truncated DER element")
    return Element(tag, bytes(data[position:end])), end


def read_single(data: bytes, tag: int) -> Element:
    """Read exactly one element with ``tag`` that spans all of ``data``."""
    element, end = read_element(data)
    if element.tag != tag:
        raise DerError(f"expected DER tag 0x{tag:02x}, got 0x{element.tag:02x}")
    if end != len(data):
        raise DerError("trailing bytes after DER element")
    return element


def read_sequence(data: bytes) -> list[Element]:
    """Read the elements inside the content octets of a constructed element."""
    elements: list[Element] = []
    offset = 0
    while offset < len(data):
        element, offset = read_element(data, offset)
        elements.append(element)
    return elements


def decode_integer(element: Element) -> int:
    """Return the value of a minimal, non-negative DER INTEGER element."""
    body = element.content
    if element.tag != TAG_INTEGER or not body:
        raise DerError("expected a DER INTEGER")
    if body[0] & 0x80:
        raise DerError("negative DER INTEGER")
    if len(body) > 1 and body[0] == 0 and not body[1] & 0x80:
        raise DerError("DER INTEGER not in minimal form")
    return int.from_bytes(body, "big")


def decode_oid(element: Element) -> str:
    """Return the dotted form of a DER OBJECT IDENTIFIER element."""
    body = element.content
    if element.tag != TAG_OID or not body or body[-1] & 0x80:
        raise DerError("expected a DER OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for index, byte in enumerate(body):
        if value == 0 and byte == 0x80 and (index == 0 or not body[index - 1] & 0x80):
            raise DerError("OBJECT IDENTIFIER arc not in minimal form")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])
