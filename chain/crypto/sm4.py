"""SM4 (GB/T 32907) block cipher and CBC mode with PKCS#7 padding, in pure Python.

Only keystores and small payloads are encrypted, so a portable implementation is fast enough
and behaves the same wherever OpenSSL is built without SM4. It is not constant-time (table
look-ups); it protects data at rest, not secrets handled next to an attacker's code.
"""

from __future__ import annotations

from chain.errors import CryptoError

BLOCK_SIZE = 16
KEY_SIZE = 16

_SBOX = bytes.fromhex(
    "d690e9fecce13db716b614c228fb2c052b679a762abe04c3aa441326498606999c4250f491ef987a33540b43edcfac62"
    "e4b31ca9c908e89580df94fa758f3fa64707a7fcf37317ba83593c19e6854fa8686b81b27164da8bf8eb0f4b70569d35"
    "1e240e5e6358d1a225227c3b01217887d40046579fd327524c3602e7a0c4c89eeabf8ad240c738b5a3f7f2cef96115a1"
    "e0ae5da49b341a55ad933230f58cb1e31df6e22e8266ca60c02923ab0d534e6fd5db3745defd8e2f03ff6a726d6c5b51"
    "8d1baf92bbddbc7f11d95c411f105ad80ac13188a5cd7bbd2d74d012b8e5b4b08969974a0c96777e65b9f109c56ec684"
    "18f07dec3adc4d2079ee5f3ed7cb3948"
)
_FK = (0xA3B1BAC6, 0x56AA3350, 0x677D9197, 0xB27022DC)
_CK = tuple(
    int.from_bytes(bytes(((4 * i + j) * 7) & 0xFF for j in range(4)), "big") for i in range(32)
)
_MASK = 0xFFFFFFFF


class PaddingError(CryptoError):
    """Decrypted data whose PKCS#7 padding is malformed."""


def _rotl(word: int, bits: int) -> int:
    return ((word << bits) | (word >> (32 - bits))) & _MASK


def _tau(word: int) -> int:
    return int.from_bytes(bytes(_SBOX[b] for b in word.to_bytes(4, "big")), "big")


def _round_keys(key: bytes) -> list[int]:
    if len(key) != KEY_SIZE:
        raise CryptoError(f"SM4 key must be {KEY_SIZE} bytes")
    k = [int.from_bytes(key[4 * i : 4 * i + 4], "big") ^ _FK[i] for i in range(4)]
    round_keys: list[int] = []
    for i in range(32):
        b = _tau(k[i + 1] ^ k[i + 2] ^ k[i + 3] ^ _CK[i])
        k.append(k[i] ^ b ^ _rotl(b, 13) ^ _rotl(b, 23))
        round_keys.append(k[-1])
    return round_keys


def _crypt_block(round_keys: list[int], block: bytes) -> bytes:
    x = [int.from_bytes(block[4 * i : 4 * i + 4], "big") for i in range(4)]
    for rk in round_keys:
        b = _tau(x[-3] ^ x[-2] ^ x[-1] ^ rk)
        x.append(x[-4] ^ b ^ _rotl(b, 2) ^ _rotl(b, 10) ^ _rotl(b, 18) ^ _rotl(b, 24))
    return b"".join(word.to_bytes(4, "big") for word in reversed(x[-4:]))


def encrypt_block(key: bytes, block: bytes) -> bytes:
    """Encrypt one 16-byte block under a 16-byte key."""
    return _crypt_block(_round_keys(key), block)


def decrypt_block(key: bytes, block: bytes) -> bytes:
    """Decrypt one 16-byte block under a 16-byte key (the round keys in reverse order)."""
    return _crypt_block(_round_keys(key)[::-1], block)


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """Return SM4-CBC of ``plaintext`` with PKCS#7 padding (interoperable with
    ``openssl enc -sm4-cbc``). Never reuse an ``iv`` under one key; authenticate the result."""
    if len(iv) != BLOCK_SIZE:
        raise CryptoError(f"SM4-CBC IV must be {BLOCK_SIZE} bytes")
    round_keys = _round_keys(key)
    pad = BLOCK_SIZE - len(plaintext) % BLOCK_SIZE
    padded = plaintext + bytes([pad]) * pad
    previous = iv
    blocks: list[bytes] = []
    for start in range(0, len(padded), BLOCK_SIZE):
        previous = _crypt_block(round_keys, _xor(padded[start : start + BLOCK_SIZE], previous))
        blocks.append(previous)
    return b"".join(blocks)


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Return the plaintext of SM4-CBC ``ciphertext``; raise PaddingError on bad padding.
    Check a MAC before calling this, so that padding errors reveal nothing."""
    if len(iv) != BLOCK_SIZE:
        raise CryptoError(f"SM4-CBC IV must be {BLOCK_SIZE} bytes")
    if not ciphertext or len(ciphertext) % BLOCK_SIZE:
        raise PaddingError("SM4-CBC ciphertext must be a non-empty multiple of 16 bytes")
    round_keys = _round_keys(key)[::-1]
    previous = iv
    blocks: list[bytes] = []
    for start in range(0, len(ciphertext), BLOCK_SIZE):
        block = ciphertext[start : start + BLOCK_SIZE]
        blocks.append(_xor(_crypt_block(round_keys, block), previous))
        previous = block
    padded = b"".join(blocks)
    pad = padded[-1]
    if not 1 <= pad <= BLOCK_SIZE or padded[-pad:] != bytes([pad]) * pad:
        raise PaddingError("bad PKCS#7 padding")
    return padded[:-pad]
