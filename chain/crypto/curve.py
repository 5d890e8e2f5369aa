"""The SM2 recommended curve (GB/T 32918.5) and its group arithmetic in pure Python.

Points are kept in Jacobian coordinates ``(X, Y, Z)`` standing for ``(X/Z², Y/Z³)``; ``Z = 0``
is the point at infinity. The curve has ``a = -3``, which the doubling formula relies on.
This arithmetic is not constant-time: it serves as the portable fallback and as the test
oracle, while the native backend does the timing-sensitive work where OpenSSL is present.
"""

from __future__ import annotations

from functools import cache

from chain.errors import InvalidKey

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

CURVE_OID = "1.2.156.10197.1.301"
"""The SM2 curve (``sm2p256v1``) object identifier."""

FIELD_SIZE = 32
POINT_SIZE = 1 + 2 * FIELD_SIZE

Affine = tuple[int, int]
Jacobian = tuple[int, int, int]

INFINITY: Jacobian = (1, 1, 0)
_WINDOW_BITS = 4
_WINDOWS = 256 // _WINDOW_BITS


def is_on_curve(x: int, y: int) -> bool:
    """Return whether the affine point ``(x, y)`` with coordinates in [0, p) lies on SM2."""
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def decode_point(data: bytes) -> Affine:
    """Return the affine point of a 65-byte uncompressed encoding ``0x04 || x || y``.

    Raises InvalidKey on a wrong length or prefix, or a point that is not on the curve (SM2
    has cofactor 1, so every curve point other than infinity is in the prime-order group).
    """
    if len(data) != POINT_SIZE or data[0] != 0x04:
        raise InvalidKey("SM2 public key must be 65 bytes: 0x04 || x || y")
    x = int.from_bytes(data[1 : 1 + FIELD_SIZE], "big")
    y = int.from_bytes(data[1 + FIELD_SIZE :], "big")
    if not is_on_curve(x, y):
        raise InvalidKey("SM2 public key is not a point on the curve")
    return x, y


def encode_point(point: Affine) -> bytes:
    """Return the 65-byte uncompressed encoding of an affine point."""
    x, y = point
    return b"\x04" + x.to_bytes(FIELD_SIZE, "big") + y.to_bytes(FIELD_SIZE, "big")


def double(point: Jacobian) -> Jacobian:
    """Return 2·point (dbl-2001-b, valid because a = -3)."""
    x1, y1, z1 = point
    if z1 == 0 or y1 == 0:
        return INFINITY
    delta = z1 * z1 % P
    gamma = y1 * y1 % P
    beta = x1 * gamma % P
    alpha = 3 * (x1 - delta) * (x1 + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y1 + z1) * (y1 + z1) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return x3, y3, z3


def add_affine(point: Jacobian, other: Affine) -> Jacobian:
    """Return point + other where ``other`` is affine (madd-2007-bl)."""
    x1, y1, z1 = point
    x2, y2 = other
    if z1 == 0:
        return x2, y2, 1
    z1z1 = z1 * z1 % P
    u2 = x2 * z1z1 % P
    s2 = y2 * z1 * z1z1 % P
    h = (u2 - x1) % P
    r = 2 * (s2 - y1) % P
    if h == 0:
        return double(point) if r == 0 else INFINITY
    hh = h * h % P
    i = 4 * hh % P
    j = h * i % P
    v = x1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * y1 * j) % P
    z3 = ((z1 + h) * (z1 + h) - z1z1 - hh) % P
    return x3, y3, z3


def add(point: Jacobian, other: Jacobian) -> Jacobian:
    """Return point + other, both in Jacobian coordinates (add-2007-bl)."""
    x1, y1, z1 = point
    x2, y2, z2 = other
    if z1 == 0:
        return other
    if z2 == 0:
        return point
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    h = (u2 - u1) % P
    r = 2 * (s2 - s1) % P
    if h == 0:
        return double(point) if r == 0 else INFINITY
    i = 4 * h * h % P
    j = h * i % P
    v = u1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * s1 * j) % P
    z3 = ((z1 + z2) * (z1 + z2) - z1z1 - z2z2) * h % P
    return x3, y3, z3


def to_affine(point: Jacobian) -> Affine | None:
    """Return the affine form of ``point``, or None for the point at infinity."""
    x, y, z = point
    if z == 0:
        return None
    z_inv = pow(z, -1, P)
    z_inv2 = z_inv * z_inv % P
    return x * z_inv2 % P, y * z_inv2 * z_inv % P


def _batch_to_affine(points: list[Jacobian]) -> list[Affine]:
    # Montgomery's trick: one modular inversion for the whole table instead of one per point.
    prefix = [1]
    for _, _, z in points:
        prefix.append(prefix[-1] * z % P)
    inverse = pow(prefix[-1], -1, P)
    result: list[Affine] = [(0, 0)] * len(points)
    for index in range(len(points) - 1, -1, -1):
        x, y, z = points[index]
        z_inv = inverse * prefix[index] % P
        inverse = inverse * z % P
        z_inv2 = z_inv * z_inv % P
        result[index] = (x * z_inv2 % P, y * z_inv2 * z_inv % P)
    return result


@cache
def _base_table() -> tuple[tuple[Affine, ...], ...]:
    # table[w][d - 1] = d · 16^w · G, so k·G needs one mixed addition per 4-bit digit of k
    # and no doubling at all. Built once on first use (about 20 ms), immutable afterwards.
    rows: list[tuple[Affine, ...]] = []
    base: Jacobian = (GX, GY, 1)
    for _ in range(_WINDOWS):
        multiples = [base]
        for _ in range(2, 1 << _WINDOW_BITS):
            multiples.append(add(multiples[-1], base))
        affine = _batch_to_affine(multiples)
        rows.append(tuple(affine))
        base = _times16(affine[0])
    return tuple(rows)


def _times16(point: Affine) -> Jacobian:
    result: Jacobian = (point[0], point[1], 1)
    for _ in range(_WINDOW_BITS):
        result = double(result)
    return result


def multiply_base(scalar: int) -> Jacobian:
    """Return scalar·G for 0 <= scalar < 2^256, using the precomputed table of G."""
    table = _base_table()
    result = INFINITY
    for window in range(_WINDOWS):
        digit = (scalar >> (window * _WINDOW_BITS)) & 0xF
        if digit:
            result = add_affine(result, table[window][digit - 1])
    return result


def multiply(scalar: int, point: Affine) -> Jacobian:
    """Return scalar·point for 0 <= scalar < 2^256 (fixed 4-bit windows)."""
    multiples: list[Jacobian] = [(point[0], point[1], 1)]
    for _ in range(2, 1 << _WINDOW_BITS):
        multiples.append(add_affine(multiples[-1], point))
    table = _batch_to_affine(multiples)
    result = INFINITY
    for window in range(_WINDOWS - 1, -1, -1):
        for _ in range(_WINDOW_BITS):
            result = double(result)
        digit = (scalar >> (window * _WINDOW_BITS)) & 0xF
        if digit:
            result = add_affine(result, table[digit - 1])
    return result
