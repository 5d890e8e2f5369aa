"""The native SM2 backend: a thin ctypes binding to the system OpenSSL 3 ``libcrypto``.

Why the system library: it is maintained by the OS vendor and receives its security updates,
and it needs no extra binary wheel. The alternative ``tongsuopy`` wheel is unmaintained since
2023 and offers no way to set the SM2 signer ID.

How: ``Z_A`` and ``e = SM3(Z_A || M)`` are computed in Python (``hashlib``), and OpenSSL signs
or verifies the 32-byte ``e`` with ``EVP_PKEY_sign`` / ``EVP_PKEY_verify`` on an SM2
``EVP_PKEY``: OpenSSL 3's SM2 signature provider takes that input as the digest itself. Keys
are handed over as DER (PKCS#8, SubjectPublicKeyInfo with the SM2 curve OID), which OpenSSL 3
loads as key type ``SM2``. A private key's ``EVP_PKEY`` is built once per signing key; public
ones are kept in a small per-backend cache keyed by the 65-byte point. Nonces come from
OpenSSL's DRBG, which is seeded from the operating system's CSPRNG.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import weakref
from collections import OrderedDict
from typing import Any

from chain.crypto import pem, sm2
from chain.crypto.curve import POINT_SIZE
from chain.errors import CryptoError, InvalidKey, InvalidSignature

_PUBLIC_KEY_CACHE_SIZE = 4096
_MAX_DER_SIGNATURE = 72

_c_void_p = ctypes.c_void_p
_c_char_p = ctypes.c_char_p
_c_size_t = ctypes.c_size_t
_c_int = ctypes.c_int


class NativeUnavailable(CryptoError):
    """The system ``libcrypto`` is missing, older than 3.0, or lacks SM2."""


class _LibCrypto:
    """The handful of ``libcrypto`` functions this backend calls, with their C signatures."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self.library = library
        self.holding = ctypes.PyDLL(library._name, handle=library._handle)
        bind, quick = self._bind, self._bind_holding
        self.d2i_PUBKEY = quick(
            "d2i_PUBKEY", _c_void_p, [_c_void_p, ctypes.POINTER(_c_char_p), ctypes.c_long]
        )
        self.d2i_AutoPrivateKey = quick(
            "d2i_AutoPrivateKey",
            _c_void_p,
            [_c_void_p, ctypes.POINTER(_c_char_p), ctypes.c_long],
        )
        self.EVP_PKEY_free = quick("EVP_PKEY_free", None, [_c_void_p])
        self.EVP_PKEY_is_a = quick("EVP_PKEY_is_a", _c_int, [_c_void_p, _c_char_p])
        self.EVP_PKEY_get_octet_string_param = quick(
            "EVP_PKEY_get_octet_string_param",
            _c_int,
            [_c_void_p, _c_char_p, _c_char_p, _c_size_t, ctypes.POINTER(_c_size_t)],
        )
        self.EVP_PKEY_CTX_new_from_pkey = quick(
            "EVP_PKEY_CTX_new_from_pkey", _c_void_p, [_c_void_p, _c_void_p, _c_char_p]
        )
        self.EVP_PKEY_CTX_free = quick("EVP_PKEY_CTX_free", None, [_c_void_p])
        self.EVP_PKEY_sign_init = quick("EVP_PKEY_sign_init", _c_int, [_c_void_p])
        self.EVP_PKEY_sign = bind(
            "EVP_PKEY_sign",
            _c_int,
            [_c_void_p, _c_char_p, ctypes.POINTER(_c_size_t), _c_char_p, _c_size_t],
        )
        self.EVP_PKEY_verify_init = quick("EVP_PKEY_verify_init", _c_int, [_c_void_p])
        self.EVP_PKEY_verify = bind(
            "EVP_PKEY_verify", _c_int, [_c_void_p, _c_char_p, _c_size_t, _c_char_p, _c_size_t]
        )
        self.ERR_clear_error = quick("ERR_clear_error", None, [])
        self.OpenSSL_version_num = quick("OpenSSL_version_num", ctypes.c_ulong, [])

    def _bind(self, name: str, restype: Any, argtypes: list[Any]) -> Any:
        """``name``, called with the GIL let go: for the elliptic-curve work itself (about
        0.3 ms a signature or verification), which other threads may overlap."""
        return self._bind_from(self.library, name, restype, argtypes)

    def _bind_holding(self, name: str, restype: Any, argtypes: list[Any]) -> Any:
        """``name``, called with the GIL held: for calls of a few microseconds. A thread
        that lets the GIL go must take it back, and while another thread runs Python it
        waits for it to be handed over (up to the switch interval, 5 ms): one such wait per
        signature check, not four."""
        return self._bind_from(self.holding, name, restype, argtypes)

    @staticmethod
    def _bind_from(library: ctypes.CDLL, name: str, restype: Any, argtypes: list[Any]) -> Any:
        try:
            function = getattr(library, name)
        except AttributeError as error:
            raise NativeUnavailable(f"libcrypto has no {name} (OpenSSL 3 needed)") from error
        function.restype = restype
        function.argtypes = argtypes
        return function


class _PKey:
    """Owns one ``EVP_PKEY *`` and frees it when the Python object goes away."""

    def __init__(self, lib: _LibCrypto, pointer: int) -> None:
        self.pointer = pointer
        self._finalizer = weakref.finalize(self, lib.EVP_PKEY_free, pointer)


def _load_der(lib: _LibCrypto, loader: Any, body: bytes) -> _PKey:
    buffer = ctypes.c_char_p(body)
    pointer = loader(None, ctypes.byref(buffer), len(body))
    if not pointer:
        lib.ERR_clear_error()
        raise InvalidKey("OpenSSL refused the SM2 key")
    key = _PKey(lib, pointer)
    if lib.EVP_PKEY_is_a(pointer, b"SM2") != 1:
        raise NativeUnavailable("OpenSSL did not load the key as SM2")
    return key


class NativeSigningKey:
    """An SM2 private key held as an OpenSSL ``EVP_PKEY``."""

    def __init__(self, lib: _LibCrypto, scalar: int) -> None:
        self._lib = lib
        self._pkey = _load_der(
            lib, lib.d2i_AutoPrivateKey, pem.encode_private_key_info(scalar, None)
        )
        point = ctypes.create_string_buffer(POINT_SIZE)
        written = _c_size_t(0)
        status = lib.EVP_PKEY_get_octet_string_param(
            self._pkey.pointer, b"encoded-pub-key", point, POINT_SIZE, ctypes.byref(written)
        )
        if status != 1 or written.value != POINT_SIZE:
            lib.ERR_clear_error()
            raise NativeUnavailable("OpenSSL did not derive the SM2 public key")
        self._public_key = point.raw

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed public point."""
        return self._public_key

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        """Return ``(r, s)`` over the 32-byte ``e`` with a fresh nonce from OpenSSL's DRBG."""
        lib = self._lib
        context = lib.EVP_PKEY_CTX_new_from_pkey(None, self._pkey.pointer, None)
        if not context:
            raise CryptoError("EVP_PKEY_CTX_new_from_pkey failed")
        try:
            signature = ctypes.create_string_buffer(_MAX_DER_SIGNATURE)
            length = _c_size_t(_MAX_DER_SIGNATURE)
            if (
                lib.EVP_PKEY_sign_init(context) != 1
                or lib.EVP_PKEY_sign(context, signature, ctypes.byref(length), digest, len(digest))
                != 1
            ):
                lib.ERR_clear_error()
                raise CryptoError("OpenSSL SM2 signing failed")
        finally:
            lib.EVP_PKEY_CTX_free(context)
        return sm2.decode_signature(signature.raw[: length.value])


class NativeBackend:
    """SM2 through the system OpenSSL 3 ``libcrypto``."""

    name = "native"

    def __init__(self, library_path: str | None = None) -> None:
        path = library_path or ctypes.util.find_library("crypto")
        if path is None:
            raise NativeUnavailable("libcrypto not found")
        try:
            library = ctypes.CDLL(path)
        except OSError as error:
            raise NativeUnavailable(f"cannot load {path}: {error}") from error
        self._lib = _LibCrypto(library)
        if self._lib.OpenSSL_version_num() < 0x30000000:
            raise NativeUnavailable("OpenSSL 3.0 or later is needed")
        self._public_keys: OrderedDict[bytes, _PKey] = OrderedDict()
        self._lock = threading.Lock()

    def load_signing_key(self, scalar: int) -> NativeSigningKey:
        """Return a signing key for ``scalar`` (which must lie in [1, n-2])."""
        return NativeSigningKey(self._lib, scalar)

    def _public_pkey(self, public_key: bytes) -> _PKey:
        with self._lock:
            cached = self._public_keys.get(public_key)
            if cached is not None:
                self._public_keys.move_to_end(public_key)
                return cached
        if len(public_key) != POINT_SIZE:
            raise InvalidKey("SM2 public key must be 65 bytes")
        # OpenSSL checks that the point is on the curve while decoding it.
        key = _load_der(
            self._lib, self._lib.d2i_PUBKEY, pem.encode_subject_public_key_info(public_key)
        )
        with self._lock:
            self._public_keys[public_key] = key
            # Evicted keys are freed once the last thread using them drops its reference.
            while len(self._public_keys) > _PUBLIC_KEY_CACHE_SIZE:
                self._public_keys.popitem(last=False)
        return key

    def verify_digest(self, public_key: bytes, digest: bytes, r: int, s: int) -> None:
        """Return if ``(r, s)`` is a valid signature over ``e = digest``; else raise
        InvalidSignature (or InvalidKey for a public key that is not on the curve)."""
        sm2.check_signature_range(r, s)
        key = self._public_pkey(public_key)
        signature = sm2.encode_signature(r, s)
        lib = self._lib
        context = lib.EVP_PKEY_CTX_new_from_pkey(None, key.pointer, None)
        if not context:
            raise CryptoError("EVP_PKEY_CTX_new_from_pkey failed")
        try:
            valid = (
                lib.EVP_PKEY_verify_init(context) == 1
                and lib.EVP_PKEY_verify(context, signature, len(signature), digest, len(digest))
                == 1
            )
        finally:
            lib.EVP_PKEY_CTX_free(context)
        if not valid:
            lib.ERR_clear_error()
            raise InvalidSignature("SM2 signature does not verify")


# -- key agreement and frame cipher (p2p secure channel) ---------------------------------------
#
# Bound separately from :class:`_LibCrypto` so that the signing backend above stays as it is.
# OpenSSL 3 refuses ``EVP_PKEY_derive`` on keys of type ``SM2``, so the ephemeral key agreement
# goes through the ``EC_KEY`` API on the SM2 curve (deprecated in 3.0 but present, and the only
# route to ECDH on that curve); the frame cipher is ``SM4-CTR`` from the default provider
# (OpenSSL 3.0 has no SM4-GCM).

_POINT_CONVERSION_UNCOMPRESSED = 4
_SM4_KEY_SIZE = 16
_SM4_IV_SIZE = 16


class _LibCryptoChannel:
    """The ``libcrypto`` functions behind ephemeral SM2 ECDH and SM4-CTR."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self.library = library
        bind = self._bind
        self.OBJ_sn2nid = bind("OBJ_sn2nid", _c_int, [_c_char_p])
        self.EC_KEY_new_by_curve_name = bind("EC_KEY_new_by_curve_name", _c_void_p, [_c_int])
        self.EC_KEY_generate_key = bind("EC_KEY_generate_key", _c_int, [_c_void_p])
        self.EC_KEY_free = bind("EC_KEY_free", None, [_c_void_p])
        self.EC_KEY_get0_group = bind("EC_KEY_get0_group", _c_void_p, [_c_void_p])
        self.EC_KEY_get0_public_key = bind("EC_KEY_get0_public_key", _c_void_p, [_c_void_p])
        self.EC_POINT_new = bind("EC_POINT_new", _c_void_p, [_c_void_p])
        self.EC_POINT_free = bind("EC_POINT_free", None, [_c_void_p])
        self.EC_POINT_oct2point = bind(
            "EC_POINT_oct2point",
            _c_int,
            [_c_void_p, _c_void_p, _c_char_p, _c_size_t, _c_void_p],
        )
        self.EC_POINT_point2oct = bind(
            "EC_POINT_point2oct",
            _c_size_t,
            [_c_void_p, _c_void_p, _c_int, _c_char_p, _c_size_t, _c_void_p],
        )
        self.ECDH_compute_key = bind(
            "ECDH_compute_key",
            _c_int,
            [_c_char_p, _c_size_t, _c_void_p, _c_void_p, _c_void_p],
        )
        self.EVP_CIPHER_fetch = bind(
            "EVP_CIPHER_fetch", _c_void_p, [_c_void_p, _c_char_p, _c_char_p]
        )
        self.EVP_CIPHER_CTX_new = bind("EVP_CIPHER_CTX_new", _c_void_p, [])
        self.EVP_CIPHER_CTX_free = bind("EVP_CIPHER_CTX_free", None, [_c_void_p])
        self.EVP_EncryptInit_ex2 = bind(
            "EVP_EncryptInit_ex2",
            _c_int,
            [_c_void_p, _c_void_p, _c_char_p, _c_char_p, _c_void_p],
        )
        self.EVP_EncryptUpdate = bind(
            "EVP_EncryptUpdate",
            _c_int,
            [_c_void_p, _c_char_p, ctypes.POINTER(_c_int), _c_char_p, _c_int],
        )
        self.ERR_clear_error = bind("ERR_clear_error", None, [])
        self.sm2_nid = self.OBJ_sn2nid(b"SM2")
        if self.sm2_nid <= 0:
            raise NativeUnavailable("libcrypto does not know the SM2 curve")
        self.sm4_ctr = self.EVP_CIPHER_fetch(None, b"SM4-CTR", None)
        if not self.sm4_ctr:
            self.ERR_clear_error()
            raise NativeUnavailable("libcrypto has no SM4-CTR")

    def _bind(self, name: str, restype: Any, argtypes: list[Any]) -> Any:
        try:
            function = getattr(self.library, name)
        except AttributeError as error:
            raise NativeUnavailable(f"libcrypto has no {name} (OpenSSL 3 needed)") from error
        function.restype = restype
        function.argtypes = argtypes
        return function


class NativeEphemeralKey:
    """A fresh SM2-curve key pair for one key agreement, held as an OpenSSL ``EC_KEY``; its
    private scalar never leaves OpenSSL and is freed with the object."""

    def __init__(self, lib: _LibCryptoChannel) -> None:
        self._lib = lib
        pointer = lib.EC_KEY_new_by_curve_name(lib.sm2_nid)
        if not pointer:
            lib.ERR_clear_error()
            raise NativeUnavailable("OpenSSL cannot build an SM2-curve EC_KEY")
        self._pointer = pointer
        self._finalizer = weakref.finalize(self, lib.EC_KEY_free, pointer)
        if lib.EC_KEY_generate_key(pointer) != 1:
            lib.ERR_clear_error()
            raise CryptoError("OpenSSL could not generate an ephemeral SM2 key")
        group = lib.EC_KEY_get0_group(pointer)
        point = ctypes.create_string_buffer(POINT_SIZE)
        written = lib.EC_POINT_point2oct(
            group,
            lib.EC_KEY_get0_public_key(pointer),
            _POINT_CONVERSION_UNCOMPRESSED,
            point,
            POINT_SIZE,
            None,
        )
        if written != POINT_SIZE:
            lib.ERR_clear_error()
            raise CryptoError("OpenSSL could not encode the ephemeral public key")
        self._public_key = point.raw

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed public point."""
        return self._public_key

    def agree(self, peer_public_key: bytes) -> bytes:
        """Return the 32-byte x-coordinate of (own scalar × the peer's point). Raises
        InvalidKey if ``peer_public_key`` is not an uncompressed point on the curve."""
        lib = self._lib
        if len(peer_public_key) != POINT_SIZE or peer_public_key[0] != 0x04:
            raise InvalidKey("SM2 public key must be 65 bytes: 0x04 || x || y")
        group = lib.EC_KEY_get0_group(self._pointer)
        point = lib.EC_POINT_new(group)
        if not point:
            raise CryptoError("EC_POINT_new failed")
        try:
            # OpenSSL checks that the point lies on the curve while decoding it.
            if lib.EC_POINT_oct2point(group, point, peer_public_key, POINT_SIZE, None) != 1:
                lib.ERR_clear_error()
                raise InvalidKey("SM2 public key is not a point on the curve")
            shared = ctypes.create_string_buffer(32)
            if lib.ECDH_compute_key(shared, 32, point, self._pointer, None) != 32:
                lib.ERR_clear_error()
                raise CryptoError("OpenSSL ECDH on the SM2 curve failed")
        finally:
            lib.EC_POINT_free(point)
        return shared.raw


class NativeSm4Ctr:
    """SM4 in counter mode under one key, as one continuous key stream from an initial
    16-byte counter block: each :meth:`apply` encrypts or decrypts (the same operation) the
    next bytes of the stream. Not thread-safe."""

    def __init__(self, lib: _LibCryptoChannel, key: bytes, counter_block: bytes) -> None:
        if len(key) != _SM4_KEY_SIZE:
            raise CryptoError(f"SM4 key must be {_SM4_KEY_SIZE} bytes")
        if len(counter_block) != _SM4_IV_SIZE:
            raise CryptoError(f"SM4-CTR counter block must be {_SM4_IV_SIZE} bytes")
        self._lib = lib
        context = lib.EVP_CIPHER_CTX_new()
        if not context:
            raise CryptoError("EVP_CIPHER_CTX_new failed")
        self._context = context
        self._finalizer = weakref.finalize(self, lib.EVP_CIPHER_CTX_free, context)
        if lib.EVP_EncryptInit_ex2(context, lib.sm4_ctr, key, counter_block, None) != 1:
            lib.ERR_clear_error()
            raise CryptoError("OpenSSL refused the SM4-CTR key")

    def apply(self, data: bytes) -> bytes:
        """Return ``data`` XOR the next ``len(data)`` bytes of the key stream."""
        if not data:
            return b""
        out = ctypes.create_string_buffer(len(data))
        written = _c_int(0)
        status = self._lib.EVP_EncryptUpdate(
            self._context, out, ctypes.byref(written), data, len(data)
        )
        if status != 1 or written.value != len(data):
            self._lib.ERR_clear_error()
            raise CryptoError("OpenSSL SM4-CTR failed")
        return out.raw


class NativeChannelCrypto:
    """Ephemeral SM2 key agreement and SM4-CTR through the system OpenSSL 3 ``libcrypto``."""

    name = "native"

    def __init__(self, library_path: str | None = None) -> None:
        path = library_path or ctypes.util.find_library("crypto")
        if path is None:
            raise NativeUnavailable("libcrypto not found")
        try:
            library = ctypes.CDLL(path)
        except OSError as error:
            raise NativeUnavailable(f"cannot load {path}: {error}") from error
        self._lib = _LibCryptoChannel(library)

    def ephemeral_key(self) -> NativeEphemeralKey:
        """A fresh key pair from OpenSSL's DRBG."""
        return NativeEphemeralKey(self._lib)

    def sm4_ctr(self, key: bytes, counter_block: bytes) -> NativeSm4Ctr:
        """An SM4-CTR key stream under the 16-byte ``key`` from ``counter_block``."""
        return NativeSm4Ctr(self._lib, key, counter_block)
