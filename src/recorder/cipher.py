"""Encryption of finished recordings: AES-CBC with PKCS#7 padding, the format
``openssl enc -aes-128-cbc -K <key hex> -iv <iv hex>`` reads and writes (no salt header).

The cryptography package does the cipher work; nothing here is hand-written crypto.

Never reuse an IV with the same key: CBC with a repeated (key, IV) pair leaks whether two
recordings start with the same bytes, and every WAV header of the same format and rate
starts the same way.  Use a fresh random IV per recording (``AesCbcCipher.random_iv()``)
and store it next to the file; the IV is not secret.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["AesCbcCipher", "CipherError"]

_CHUNK = 1 << 20


class CipherError(ValueError):
    """Decryption failed: wrong key or IV, or the data is not an encrypted recording."""


def _as_key_bytes(value, name: str, sizes: tuple[int, ...]) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"{name} must be bytes or a hex string, got {value!r}") from None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes or a hex string, not {type(value).__name__}")
    value = bytes(value)
    if len(value) not in sizes:
        allowed = " or ".join(f"{s} bytes ({s * 8} bits)" for s in sizes)
        raise ValueError(f"{name} is {len(value)} bytes; it must be {allowed}")
    return value


class AesCbcCipher:
    """AES-CBC with PKCS#7 padding.

    ``key``: 16, 24 or 32 bytes (AES-128/192/256); ``iv``: 16 bytes.  Either may be given
    as bytes or as a hex string (as ``openssl enc -K/-iv`` take them).
    """

    def __init__(self, key, iv):
        self.key = _as_key_bytes(key, "key", (16, 24, 32))
        self.iv = _as_key_bytes(iv, "iv", (16,))

    @staticmethod
    def random_iv() -> bytes:
        """16 random bytes from the OS, for a new recording."""
        return os.urandom(16)

    @property
    def bits(self) -> int:
        return len(self.key) * 8

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.iv))

    @staticmethod
    def encrypted_size(plain_size: int) -> int:
        """Size of the ciphertext of ``plain_size`` bytes (PKCS#7 always adds 1-16 bytes)."""
        return (plain_size // 16 + 1) * 16

    @staticmethod
    def max_plain_size(limit: int) -> int:
        """The largest plaintext whose ciphertext fits in ``limit`` bytes."""
        return (limit // 16) * 16 - 1

    def encrypt(self, data: bytes) -> bytes:
        padder = padding.PKCS7(128).padder()
        enc = self._cipher().encryptor()
        return enc.update(padder.update(bytes(data)) + padder.finalize()) + enc.finalize()

    def decrypt(self, data: bytes) -> bytes:
        data = bytes(data)
        if len(data) == 0 or len(data) % 16:
            raise CipherError(f"encrypted data must be a non-empty multiple of 16 bytes, got {len(data)}")
        dec = self._cipher().decryptor()
        plain = dec.update(data) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(plain) + unpadder.finalize()
        except ValueError:
            raise CipherError("decryption failed: wrong key or IV, or not an encrypted file") from None

    def encrypt_file(self, src, dst) -> int:
        """Encrypt the binary file object ``src`` into ``dst`` in 1 MiB pieces (constant
        memory whatever the recording's size).  Returns the bytes written."""
        padder = padding.PKCS7(128).padder()
        enc = self._cipher().encryptor()
        written = 0
        while True:
            block = src.read(_CHUNK)
            if not block:
                break
            out = enc.update(padder.update(block))
            dst.write(out)
            written += len(out)
        out = enc.update(padder.finalize()) + enc.finalize()
        dst.write(out)
        return written + len(out)

    def __repr__(self) -> str:
        return f"AesCbcCipher(AES-{self.bits}, iv={self.iv.hex()})"
