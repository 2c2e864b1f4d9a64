"""Encryption of recordings.

Two ciphers for finished files, both following :class:`recorder.types.FileCipher` (what
every ``cipher=`` argument of the package takes):

* :class:`AesCbcCipher` - AES-CBC with PKCS#7 padding, the format
  ``openssl enc -aes-N-cbc -K <key hex> -iv <iv hex>`` reads and writes (no salt header),
  as the spec asks.  **Confidentiality only, no integrity**: anyone who can change the
  file can change the audio it decodes to without being noticed, and whether a changed
  file still decodes tells them something.  Use it where ``openssl`` compatibility is
  needed and the storage is trusted.
* :class:`AesGcmCipher` - AES-GCM (authenticated): a fresh random 96-bit nonce per file
  in a small header, the tag at the end.  Any change to the file (a flipped bit, a cut,
  extra bytes) is refused.  Prefer it.

:class:`SealedPart` is the temporary file of a recording in progress under a cipher: no
plaintext audio ever reaches the disk, and a part left by a crash is recovered with
:func:`recorder.wav.recover` (``recorder repair --key ...``).  :func:`publish_sealed` turns a finished
part into the final encrypted file.

Every failure to decrypt - wrong key or IV, bad padding, bad tag, a changed or cut file,
decrypted bytes that are not a WAV file - raises :class:`CipherError` (a ``ValueError``)
with the one message :data:`DECRYPT_FAILED`, which says nothing about the plaintext.

The cryptography package does the cipher work; nothing here is hand-written crypto.  How
sealed parts are laid out, and why, is on the design page of the documentation.

Never reuse an IV with the same key in CBC: a repeated (key, IV) pair leaks whether two
recordings start with the same bytes, and every WAV header of the same format and rate
starts the same way.  Use a fresh random IV per recording (``AesCbcCipher.random_iv()``)
and store it next to the file; the IV is not secret.  GCM picks its nonce itself.
"""

from __future__ import annotations

import hmac
import io
import os
from typing import cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .types import BinaryFile, BufferLike, FileCipher

__all__ = [
    "DECRYPT_FAILED",
    "AesCbcCipher",
    "AesGcmCipher",
    "CipherError",
    "SealedPart",
    "check_cipher",
    "is_sealed_part",
    "publish_sealed",
]

_CHUNK = 1 << 20

DECRYPT_FAILED = (
    "cannot decrypt: wrong key, IV or cipher mode, " "or not an intact encrypted recording"
)


class CipherError(ValueError):
    """Decryption failed: wrong key, IV or mode, or the data is not an intact encrypted
    recording.

    Always carries the one message :data:`DECRYPT_FAILED` and deliberately says no more,
    so an error tells nothing about the plaintext.

    Parameters
    ----------
    message : str, optional
        Kept for subclassing; the package always uses the default.

    Examples
    --------
    >>> from recorder import AesGcmCipher, CipherError
    >>> try:
    ...     AesGcmCipher(bytes(32)).decrypt(b"not a ciphertext")
    ... except CipherError as e:
    ...     print(e)
    cannot decrypt: wrong key, IV or cipher mode, or not an intact encrypted recording
    """

    def __init__(self, message: str = DECRYPT_FAILED):
        super().__init__(message)


def check_cipher(cipher: object, needs: tuple[str, ...] = ("decrypt",)) -> FileCipher:
    """Check that ``cipher`` can be used as a cipher.

    Parameters
    ----------
    cipher : object
        The object given as ``cipher=``.
    needs : tuple of str, optional
        The method names it must have (besides a bytes ``key``).

    Returns
    -------
    FileCipher
        ``cipher`` itself.

    Raises
    ------
    TypeError
        ``cipher`` lacks a bytes ``key`` or one of the methods, naming what is allowed.

    Examples
    --------
    >>> from recorder.cipher import AesGcmCipher, check_cipher
    >>> c = AesGcmCipher(bytes(32))
    >>> check_cipher(c) is c
    True
    >>> check_cipher("secret")
    Traceback (most recent call last):
    ...
    TypeError: cipher must be a recorder.AesCbcCipher or recorder.AesGcmCipher (an object with a bytes key, decrypt()), not str
    """
    if not (
        all(callable(getattr(cipher, n, None)) for n in needs)
        and isinstance(getattr(cipher, "key", None), bytes)
    ):
        has = "".join(f", {n}()" for n in needs)
        raise TypeError(
            "cipher must be a recorder.AesCbcCipher or recorder.AesGcmCipher "
            f"(an object with a bytes key{has}), not {type(cipher).__name__}"
        )
    return cipher  # type: ignore[return-value]


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


def _read_exactly(f, n: int) -> bytes:
    """``n`` bytes from ``f`` (short reads joined), or fewer only at the end of the file."""
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _write_all(f, data) -> None:
    view = memoryview(data).cast("B")
    while view.nbytes:
        k = f.write(view)
        k = view.nbytes if k is None else k
        view = view[k:]


# --- finished files ------------------------------------------------------------------------


class AesCbcCipher:
    """AES-CBC with PKCS#7 padding, as ``openssl enc -aes-N-cbc -K ... -iv ...``.

    Confidentiality only: CBC has no integrity check, so a changed file decrypts to
    changed audio (or fails) without telling which.  Use :class:`AesGcmCipher` unless
    you need ``openssl enc`` compatibility.  Never reuse an IV with the same key.

    Parameters
    ----------
    key : bytes or str
        16, 24 or 32 bytes (AES-128/192/256), as bytes or as a hex string (as
        ``openssl enc -K`` takes it).
    iv : bytes or str
        16 bytes, as bytes or hex: a fresh :meth:`random_iv` per recording.

    Raises
    ------
    TypeError
        ``key`` or ``iv`` is neither bytes nor a string.
    ValueError
        A length other than those allowed, or a string that is not hex.

    Examples
    --------
    >>> from recorder import AesCbcCipher
    >>> c = AesCbcCipher("00" * 16, AesCbcCipher.random_iv())
    >>> c.bits
    128
    >>> c.decrypt(c.encrypt(b"RIFF...."))
    b'RIFF....'
    >>> len(c.encrypt(bytes(16))) == c.encrypted_size(16) == 32
    True
    """

    def __init__(self, key: bytes | str, iv: bytes | str) -> None:
        self.key = _as_key_bytes(key, "key", (16, 24, 32))
        self.iv = _as_key_bytes(iv, "iv", (16,))

    @staticmethod
    def random_iv() -> bytes:
        """A new IV: 16 random bytes from the OS, for a new recording.

        Returns
        -------
        bytes
            16 bytes; store them next to the file (an IV is not secret).
        """
        return os.urandom(16)

    @property
    def bits(self) -> int:
        """The key size in bits: 128, 192 or 256."""
        return len(self.key) * 8

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.iv))

    @staticmethod
    def encrypted_size(plain_size: int) -> int:
        """The size of the ciphertext of ``plain_size`` bytes.

        Parameters
        ----------
        plain_size : int
            Plaintext bytes.

        Returns
        -------
        int
            The next multiple of 16 above ``plain_size`` (PKCS#7 always adds 1 to 16
            bytes).
        """
        return (plain_size // 16 + 1) * 16

    @staticmethod
    def max_plain_size(limit: int) -> int:
        """The largest plaintext whose ciphertext fits in ``limit`` bytes.

        Parameters
        ----------
        limit : int
            Bytes available on disk.

        Returns
        -------
        int
            The plaintext size (-1 when ``limit`` is below 16: nothing fits).
        """
        return (limit // 16) * 16 - 1

    def encrypt(self, data: BufferLike) -> bytes:
        """Encrypt a whole file's bytes in memory.

        Parameters
        ----------
        data : BufferLike
            The plaintext.

        Returns
        -------
        bytes
            The ciphertext, :meth:`encrypted_size` bytes long.
        """
        padder = padding.PKCS7(128).padder()
        enc = self._cipher().encryptor()
        return enc.update(padder.update(bytes(data)) + padder.finalize()) + enc.finalize()

    def decrypt(self, data: BufferLike) -> bytes:
        """Decrypt a whole file's bytes in memory.

        Parameters
        ----------
        data : BufferLike
            The ciphertext.

        Returns
        -------
        bytes
            The plaintext.

        Raises
        ------
        CipherError
            The padding is wrong (a wrong key or IV, or a changed or cut file; a change
            that keeps the padding valid is not detected: CBC has no integrity).
        """
        out = io.BytesIO()
        self.decrypt_file(io.BytesIO(bytes(data)), out)
        return out.getvalue()

    def encrypt_file(self, src: BinaryFile, dst: BinaryFile) -> int:
        """Encrypt a file in 1 MiB pieces (constant memory whatever the recording's size).

        Parameters
        ----------
        src : binary file object
            Read from where it stands to its end.
        dst : binary file object
            Receives the ciphertext.

        Returns
        -------
        int
            The bytes written to ``dst``.

        Examples
        --------
        >>> import io
        >>> from recorder import AesCbcCipher
        >>> c = AesCbcCipher(bytes(16), bytes(16))
        >>> c.encrypt_file(io.BytesIO(b"x" * 100), io.BytesIO())
        112
        """
        padder = padding.PKCS7(128).padder()
        enc = self._cipher().encryptor()
        written = 0
        while True:
            block = src.read(_CHUNK)
            if not block:
                break
            out = enc.update(padder.update(block))
            _write_all(dst, out)
            written += len(out)
        out = enc.update(padder.finalize()) + enc.finalize()
        _write_all(dst, out)
        return written + len(out)

    def decrypt_file(self, src: BinaryFile, dst: BinaryFile) -> int:
        """Decrypt a file in 1 MiB pieces.

        Parameters
        ----------
        src : binary file object
            The ciphertext, read from where it stands to its end.
        dst : binary file object
            Receives the plaintext.  On :class:`CipherError` it holds garbage: give a
            temporary, sealed one (:class:`SealedPart`) and discard it.

        Returns
        -------
        int
            The plaintext bytes written.

        Raises
        ------
        CipherError
            The padding is wrong (found at the end).
        """
        dec = self._cipher().decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        written = 0
        try:
            while True:
                block = src.read(_CHUNK)
                if not block:
                    break
                out = unpadder.update(dec.update(block))
                _write_all(dst, out)
                written += len(out)
            out = unpadder.update(dec.finalize()) + unpadder.finalize()
        except ValueError:
            failed = True
        else:
            failed = False
        if failed:
            raise CipherError()
        _write_all(dst, out)
        return written + len(out)

    def __repr__(self) -> str:
        return f"AesCbcCipher(AES-{self.bits}, iv={self.iv.hex()})"


_GCM_MAGIC = b"CRGCM"  # + version byte + 12-byte nonce; the 16-byte tag ends the file
_GCM_VERSION = 1
_GCM_HEAD = len(_GCM_MAGIC) + 1 + 12
_GCM_TAG = 16


class AesGcmCipher:
    """AES-GCM, authenticated: a changed, cut or extended file is refused.

    Each file gets a fresh random 96-bit nonce from the OS, chosen inside
    :meth:`encrypt_file` / :meth:`encrypt` (a caller cannot pass one, so cannot reuse
    one); keep well below 2**32 files per key.

    File layout: ``b"CRGCM"``, a version byte (1), the 12-byte nonce, the ciphertext
    (as long as the plaintext), the 16-byte tag.  The 18-byte header is authenticated too.

    Parameters
    ----------
    key : bytes or str
        32 bytes for AES-256 (16 or 24 are accepted too), as bytes or a hex string;
        :meth:`random_key` makes one.

    Raises
    ------
    TypeError
        ``key`` is neither bytes nor a string.
    ValueError
        A length other than 16, 24 or 32 bytes, or a string that is not hex.

    Examples
    --------
    >>> from recorder import AesGcmCipher
    >>> c = AesGcmCipher(AesGcmCipher.random_key())
    >>> blob = c.encrypt(b"RIFF....")
    >>> len(blob) == 8 + c.overhead
    True
    >>> c.decrypt(blob)
    b'RIFF....'
    """

    #: Bytes a file gains: the 18-byte header and the 16-byte tag.
    overhead = _GCM_HEAD + _GCM_TAG

    def __init__(self, key: bytes | str) -> None:
        self.key = _as_key_bytes(key, "key", (16, 24, 32))

    @staticmethod
    def random_key(bits: int = 256) -> bytes:
        """A new random key from the OS.

        Parameters
        ----------
        bits : {256, 192, 128}, optional
            The key size.

        Returns
        -------
        bytes
            ``bits // 8`` random bytes.

        Raises
        ------
        ValueError
            ``bits`` is not 128, 192 or 256.
        """
        if bits not in (128, 192, 256):
            raise ValueError(f"bits must be 128, 192 or 256, got {bits!r}")
        return os.urandom(bits // 8)

    @property
    def bits(self) -> int:
        """The key size in bits: 128, 192 or 256."""
        return len(self.key) * 8

    @classmethod
    def encrypted_size(cls, plain_size: int) -> int:
        """The size of the encrypted file of ``plain_size`` bytes.

        Parameters
        ----------
        plain_size : int
            Plaintext bytes.

        Returns
        -------
        int
            ``plain_size + overhead``.
        """
        return plain_size + cls.overhead

    @classmethod
    def max_plain_size(cls, limit: int) -> int:
        """The largest plaintext whose encrypted file fits in ``limit`` bytes.

        Parameters
        ----------
        limit : int
            Bytes available on disk.

        Returns
        -------
        int
            ``limit - overhead``, and 0 at least.
        """
        return max(limit - cls.overhead, 0)

    @staticmethod
    def _header() -> bytes:
        return _GCM_MAGIC + bytes([_GCM_VERSION]) + os.urandom(12)

    def encrypt(self, data: BufferLike) -> bytes:
        """Encrypt a whole file's bytes in memory, under a fresh nonce.

        Parameters
        ----------
        data : BufferLike
            The plaintext.

        Returns
        -------
        bytes
            Header, ciphertext and tag: :meth:`encrypted_size` bytes.
        """
        head = self._header()
        return head + AESGCM(self.key).encrypt(head[-12:], bytes(data), head)

    def decrypt(self, data: BufferLike) -> bytes:
        """Decrypt and authenticate a whole file's bytes in memory.

        Parameters
        ----------
        data : BufferLike
            An encrypted file's bytes.

        Returns
        -------
        bytes
            The plaintext (nothing is returned unless the tag checks).

        Raises
        ------
        CipherError
            A wrong key, or a changed, cut or extended file.
        """
        data = bytes(data)
        if len(data) < self.overhead or not data.startswith(_GCM_MAGIC + bytes([_GCM_VERSION])):
            raise CipherError()
        head = data[:_GCM_HEAD]
        try:
            return AESGCM(self.key).decrypt(head[-12:], data[_GCM_HEAD:], head)
        except InvalidTag:
            pass
        raise CipherError()

    def encrypt_file(self, src: BinaryFile, dst: BinaryFile) -> int:
        """Encrypt a file in 1 MiB pieces, under a fresh nonce.

        Parameters
        ----------
        src : binary file object
            Read from where it stands to its end.
        dst : binary file object
            Receives header, ciphertext and tag.

        Returns
        -------
        int
            The bytes written to ``dst``.
        """
        head = self._header()
        enc = Cipher(algorithms.AES(self.key), modes.GCM(head[-12:])).encryptor()
        enc.authenticate_additional_data(head)
        _write_all(dst, head)
        written = len(head)
        while True:
            block = src.read(_CHUNK)
            if not block:
                break
            out = enc.update(block)
            _write_all(dst, out)
            written += len(out)
        out = enc.finalize() + enc.tag
        _write_all(dst, out)
        return written + len(out)

    def decrypt_file(self, src: BinaryFile, dst: BinaryFile) -> int:
        """Decrypt a file in 1 MiB pieces; the tag is checked at the end.

        Parameters
        ----------
        src : seekable binary file object
            The whole encrypted file (read from its start).
        dst : binary file object
            Receives the plaintext.  On :class:`CipherError` it holds unauthenticated
            bytes: give a temporary, sealed one (:class:`SealedPart`) and discard it.

        Returns
        -------
        int
            The plaintext bytes written.

        Raises
        ------
        CipherError
            A wrong key, or a changed, cut or extended file.
        """
        src.seek(0, io.SEEK_END)
        size = src.tell()
        src.seek(0)
        head = _read_exactly(src, _GCM_HEAD)
        if size < self.overhead or not head.startswith(_GCM_MAGIC + bytes([_GCM_VERSION])):
            raise CipherError()
        src.seek(size - _GCM_TAG)
        tag = _read_exactly(src, _GCM_TAG)
        src.seek(_GCM_HEAD)
        dec = Cipher(algorithms.AES(self.key), modes.GCM(head[-12:], tag)).decryptor()
        dec.authenticate_additional_data(head)
        left = size - self.overhead
        while left:
            block = src.read(min(_CHUNK, left))
            if not block:
                raise CipherError()
            left -= len(block)
            _write_all(dst, dec.update(block))
        try:
            dec.finalize()
        except InvalidTag:
            failed = True
        else:
            failed = False
        if failed:
            raise CipherError()
        return size - self.overhead

    def __repr__(self) -> str:
        return f"AesGcmCipher(AES-{self.bits})"


# --- recordings in progress ----------------------------------------------------------------

_PART_MAGIC = b"CRPART"  # + version byte + reserved byte, salt, key check
_PART_VERSION = 1
_PART_PREFIX = _PART_MAGIC + bytes([_PART_VERSION, 0])
_SALT = 16
_CHECK = 16
_PART_HEAD = len(_PART_PREFIX) + _SALT + _CHECK  # 40 bytes, written once
_PAGE = 4096  # plaintext bytes per page
_NONCE = 12
_PAGE_OVERHEAD = _NONCE + 16  # nonce before, tag after
_DISK_PAGE = _PAGE + _PAGE_OVERHEAD


def _derive(key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    out = HKDF(
        algorithm=hashes.SHA256(),
        length=32 + _CHECK,
        salt=salt,
        info=b"callrecorder sealed part v1",
    ).derive(key)
    return out[:32], out[32:]


def _raw_file(fd_or_file, mode: str):
    """``(file, owned)``: an unbuffered binary file over an fd we take over or a path we
    open (owned: we close it), or the caller's binary file object (not owned)."""
    if isinstance(fd_or_file, bool):
        raise TypeError("expected a file descriptor, a path or a binary file object, not bool")
    if isinstance(fd_or_file, (int, str, bytes, os.PathLike)):
        return open(fd_or_file, mode, buffering=0), True
    if all(hasattr(fd_or_file, m) for m in ("read", "seek", "tell")):
        return fd_or_file, False
    raise TypeError(
        "expected a file descriptor, a path or a binary file object, "
        f"not {type(fd_or_file).__name__}"
    )


def _check_fd_flags(fd: int) -> None:
    """Pages are read back and rewritten in place: O_RDWR, and no O_APPEND."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: open() finds out
        return
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if flags & os.O_ACCMODE != os.O_RDWR or flags & os.O_APPEND:
        raise ValueError("a sealed part needs a file descriptor opened O_RDWR, without O_APPEND")


def is_sealed_part(path_or_file: str | os.PathLike[str] | BinaryFile) -> bool:
    """Whether a file starts like a :class:`SealedPart`.

    Parameters
    ----------
    path_or_file : path or seekable binary file object
        A file object is left where it was.

    Returns
    -------
    bool
        True for a sealed part's header; False otherwise, including for a path that
        cannot be read.

    Examples
    --------
    >>> import io
    >>> from recorder.cipher import AesGcmCipher, SealedPart, is_sealed_part
    >>> f = io.BytesIO()
    >>> _ = SealedPart.create(f, AesGcmCipher(bytes(32)))
    >>> is_sealed_part(f), is_sealed_part(io.BytesIO(b"RIFF"))
    (True, False)
    """
    if hasattr(path_or_file, "read"):
        f = cast(BinaryFile, path_or_file)
        pos = f.tell()
        try:
            f.seek(0)
            head = _read_exactly(f, len(_PART_PREFIX))
        finally:
            f.seek(pos)
    else:
        try:
            with open(path_or_file, "rb") as f:
                head = f.read(len(_PART_PREFIX))
        except (OSError, TypeError, ValueError):
            return False
    return head == _PART_PREFIX


class SealedPart(io.RawIOBase):
    """A binary file whose bytes on disk are all encrypted: the temporary file of a
    recording in progress under a cipher.

    It reads, writes, seeks and truncates like a normal file (what
    :class:`recorder.wav.Writer`, :func:`recorder.wav.read` and :func:`recorder.wav.repair`
    need); no plaintext byte is ever written to the disk.  Make one with :meth:`create` (a
    new, empty file) or :meth:`open` (an existing part, such as one left by a crash);
    the constructor is not public.  Given a path or an fd, the object owns the file from
    then on (``close()`` closes it); given a file object, ``close()`` flushes it and
    leaves it open.  ``flush()`` puts everything written so far on the disk (encrypted);
    ``os.fsync(part.fileno())`` makes it durable.

    On disk: a 40-byte header (``b"CRPART"``, version 1, a reserved byte, a random
    16-byte salt, a 16-byte key check), then the plaintext in 4096-byte pages, each
    stored as ``nonce (12) | AES-256-GCM ciphertext | tag (16)``.  The page key comes from
    ``cipher.key`` and the salt through HKDF-SHA256, so a wrong key is told
    (:class:`CipherError`) before anything is read, and a changed page raises
    :class:`CipherError` on reading.  Whole pages cut off the end, or a last page that does
    not authenticate, are taken for what a crash leaves: the part ends before them.  Why
    pages under fresh nonces: see the design page of the documentation.  Memory: the
    partial last page is kept until it fills or ``flush()``.

    Examples
    --------
    >>> import io
    >>> from recorder import AesGcmCipher
    >>> from recorder.cipher import SealedPart
    >>> cipher = AesGcmCipher(AesGcmCipher.random_key())
    >>> disk = io.BytesIO()
    >>> with SealedPart.create(disk, cipher) as part:
    ...     _ = part.write(b"RIFF" + bytes(100))
    >>> b"RIFF" in disk.getvalue()          # only ciphertext reached the "disk"
    False
    >>> SealedPart.open(disk, cipher).read(4)
    b'RIFF'
    """

    def __init__(self, raw, owned: bool, key: bytes, size: int, writable: bool):
        # use create() or open()
        super().__init__()
        self._raw = raw
        self._owned = owned
        self._aead = AESGCM(key)
        self._size = size  # plaintext bytes, including the pending page
        self._pos = 0
        self._writable = writable
        self._pending: dict[int, bytearray] = {}  # pages changed but not yet on disk
        self._cached: tuple[int, bytes] | None = None

    # construction
    @classmethod
    def create(
        cls, fd_or_file: int | str | os.PathLike[str] | BinaryFile, cipher: FileCipher
    ) -> SealedPart:
        """Start a new, empty part.

        Parameters
        ----------
        fd_or_file : int, path or binary file object
            An fd opened ``O_RDWR`` without ``O_APPEND`` (such as from ``os.open(name,
            O_RDWR | O_CREAT | O_EXCL, 0o600, dir_fd=...)``), a path (created; it must not
            exist), or an empty binary file object open for reading and writing.
        cipher : FileCipher
            The recording's cipher; only its ``key`` is used (through HKDF, with a salt
            of the part's own).

        Returns
        -------
        SealedPart
            Open for reading and writing, at offset 0.

        Raises
        ------
        TypeError
            ``cipher`` is not a cipher, or ``fd_or_file`` is none of the above.
        ValueError
            The file is not empty, or the fd is not ``O_RDWR`` or has ``O_APPEND``.
        FileExistsError
            The path exists.
        """
        key = check_cipher(cipher, ()).key
        if isinstance(fd_or_file, (str, bytes, os.PathLike)):
            raw, owned = open(fd_or_file, "x+b", buffering=0), True
        else:
            raw, owned = _raw_file(fd_or_file, "r+b")
        try:
            if isinstance(fd_or_file, int):
                _check_fd_flags(fd_or_file)
            raw.seek(0, io.SEEK_END)
            if raw.tell() != 0:
                raise ValueError("a new sealed part needs an empty file")
            salt = os.urandom(_SALT)
            page_key, check = _derive(key, salt)
            _write_all(raw, _PART_PREFIX + salt + check)
        except BaseException:
            if owned:
                raw.close()
            raise
        return cls(raw, owned, page_key, 0, True)

    @classmethod
    def open(
        cls,
        path_or_file: int | str | os.PathLike[str] | BinaryFile,
        cipher: FileCipher,
        writable: bool = False,
    ) -> SealedPart:
        """Open an existing part, such as one left by a crash.

        Parameters
        ----------
        path_or_file : int, path or binary file object
            The part (an fd or a path is taken over: ``close()`` closes it).
        cipher : FileCipher
            The cipher the part was created with (its ``key``).
        writable : bool, optional
            Open for reading and writing (as :func:`recorder.wav.repair` needs) rather
            than reading only.

        Returns
        -------
        SealedPart
            At offset 0.  A last page torn by a crash is left out (and, when writable,
            cut off the file).

        Raises
        ------
        CipherError
            The file is not a sealed part, or the key is wrong.
        TypeError
            ``cipher`` is not a cipher.
        """
        key = check_cipher(cipher, ()).key
        raw, owned = _raw_file(path_or_file, "r+b" if writable else "rb")
        try:
            raw.seek(0)
            head = _read_exactly(raw, _PART_HEAD)
            if len(head) < _PART_HEAD or not head.startswith(_PART_PREFIX):
                raise CipherError()
            page_key, check = _derive(key, head[len(_PART_PREFIX) : len(_PART_PREFIX) + _SALT])
            if not hmac.compare_digest(check, head[-_CHECK:]):
                raise CipherError()
            raw.seek(0, io.SEEK_END)
            body = raw.tell() - _PART_HEAD
        except BaseException:
            if owned:
                raw.close()
            raise
        full, rest = divmod(body, _DISK_PAGE)
        # a remainder too short to hold one byte is a torn write: not part of the file
        size = full * _PAGE + (rest - _PAGE_OVERHEAD if rest > _PAGE_OVERHEAD else 0)
        part = cls(raw, owned, page_key, size, writable)
        if size:
            part._drop_torn_tail()
        return part

    def _drop_torn_tail(self) -> None:
        """A last page that does not authenticate is a write torn by a crash (a cut, as a
        crash cuts): the part ends before it.  Any other page must authenticate."""
        last = (self._size - 1) // _PAGE
        try:
            self._load(last)
        except CipherError:
            self._size = last * _PAGE
            if self._writable:
                self._raw.truncate(self._disk_offset(last))

    # pages
    def _disk_offset(self, index: int) -> int:
        return _PART_HEAD + index * _DISK_PAGE

    def _load(self, index: int) -> bytes:
        if index in self._pending:
            return bytes(self._pending[index])
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        length = min(_PAGE, self._size - index * _PAGE)
        if length <= 0:
            return b""
        self._raw.seek(self._disk_offset(index))
        blob = _read_exactly(self._raw, length + _PAGE_OVERHEAD)
        failed = len(blob) != length + _PAGE_OVERHEAD
        if not failed:
            try:
                plain = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], index.to_bytes(8, "big"))
            except InvalidTag:
                failed = True
        if failed:
            raise CipherError()
        self._cached = (index, plain)
        return plain

    def _store(self, index: int, plain: bytes | bytearray) -> None:
        nonce = os.urandom(_NONCE)
        blob = nonce + self._aead.encrypt(nonce, bytes(plain), index.to_bytes(8, "big"))
        self._raw.seek(self._disk_offset(index))
        _write_all(self._raw, blob)
        self._cached = (index, bytes(plain))

    def _check(self, writing: bool = False) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed sealed part")
        if writing and not self._writable:
            raise io.UnsupportedOperation("sealed part opened read-only")

    # file interface
    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return self._writable

    def seekable(self) -> bool:
        return True

    @property
    def name(self):
        """The underlying file's ``name`` (a path, an fd), or None."""
        return getattr(self._raw, "name", None)

    def fileno(self) -> int:
        return self._raw.fileno()

    def tell(self) -> int:
        self._check()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to a plaintext offset.

        Parameters
        ----------
        offset : int
            Bytes, from where ``whence`` says.
        whence : {0, 1, 2}, optional
            ``io.SEEK_SET``, ``io.SEEK_CUR`` or ``io.SEEK_END`` (of the plaintext).

        Returns
        -------
        int
            The new offset (it may lie past the end: a write there fills the gap with
            zeros).

        Raises
        ------
        ValueError
            A bad ``whence``, a negative position, or a closed part.
        """
        self._check()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}.get(whence)
        if base is None:
            raise ValueError(f"whence must be 0, 1 or 2, got {whence!r}")
        pos = base + int(offset)
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, buffer) -> int:
        """Read plaintext into ``buffer`` (a writable buffer) from the current offset.

        Parameters
        ----------
        buffer : writable buffer
            Filled from its start.

        Returns
        -------
        int
            The bytes read: 0 at the end of the part.

        Raises
        ------
        CipherError
            A page does not authenticate (the part was changed).
        """
        self._check()
        out = memoryview(buffer).cast("B")
        done = 0
        while done < out.nbytes and self._pos < self._size:
            index, start = divmod(self._pos, _PAGE)
            page = self._load(index)
            n = min(len(page) - start, out.nbytes - done)
            out[done : done + n] = page[start : start + n]
            done += n
            self._pos += n
        return done

    def write(self, data) -> int:
        """Write plaintext at the current offset (each page reaches the disk encrypted,
        under a fresh nonce, when it fills or on :meth:`flush`).

        Parameters
        ----------
        data : BufferLike
            The bytes to write.

        Returns
        -------
        int
            ``len(data)``: everything is taken.

        Raises
        ------
        io.UnsupportedOperation
            The part was opened read-only.
        CipherError
            A page to be rewritten does not authenticate.
        """
        self._check(writing=True)
        view = memoryview(data).cast("B")
        if self._pos > self._size:  # writing past the end: zeros in between
            gap, self._pos = self._pos, self._size
            self._write_zeros(gap - self._size)
        total = view.nbytes
        while view.nbytes:
            index, start = divmod(self._pos, _PAGE)
            page = self._pending.get(index)
            if page is None:
                page = bytearray(self._load(index))
            n = min(_PAGE - start, view.nbytes)
            page[start : start + n] = view[:n]
            self._pos += n
            self._size = max(self._size, self._pos)
            view = view[n:]
            if len(page) == _PAGE:  # a whole page goes to the disk at once
                self._pending.pop(index, None)
                self._store(index, page)
            else:  # the last page waits for more or flush()
                self._pending[index] = page
                if self._cached is not None and self._cached[0] == index:
                    self._cached = None
        return total

    def _write_zeros(self, n: int) -> None:
        zeros = bytes(min(n, _CHUNK))
        while n:
            n -= self.write(zeros[:n])

    def flush(self) -> None:
        self._check()
        for index in sorted(self._pending):
            self._store(index, self._pending.pop(index))
        if hasattr(self._raw, "flush"):
            self._raw.flush()

    def truncate(self, size: int | None = None) -> int:
        """Cut (or extend with zeros) the plaintext to ``size`` bytes.

        Parameters
        ----------
        size : int or None, optional
            The new size; the current offset when None.

        Returns
        -------
        int
            The new size.

        Raises
        ------
        ValueError
            A negative size.
        io.UnsupportedOperation
            The part was opened read-only.
        """
        self._check(writing=True)
        size = self._pos if size is None else int(size)
        if size < 0:
            raise ValueError(f"negative size {size}")
        self.flush()
        if size > self._size:
            pos = self._pos
            self._pos = self._size
            self._write_zeros(size - self._size)
            self._pos = pos
            return size
        index, rest = divmod(size, _PAGE)
        if rest:
            self._store(index, self._load(index)[:rest])
        self._raw.truncate(self._disk_offset(index) + (rest + _PAGE_OVERHEAD if rest else 0))
        self._size = size
        self._cached = None
        return size

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()  # flushes
        finally:
            if self._owned:
                self._raw.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self._size} bytes"
        return f"<SealedPart {self.name!r} {state}>"


def publish_sealed(part: SealedPart, dst: BinaryFile, cipher: FileCipher) -> int:
    """Encrypt a finished part into the final file of a recording.

    The whole of ``part`` is encrypted with the user's ``cipher`` in pieces (constant
    memory); no plaintext reaches ``dst``'s disk.

    Parameters
    ----------
    part : SealedPart
        The finished recording; flushed first, and left at its end.
    dst : binary file object
        The final file, open for writing; the caller flushes, fsyncs and renames it.
    cipher : FileCipher
        :class:`AesCbcCipher` or :class:`AesGcmCipher`.

    Returns
    -------
    int
        The bytes written to ``dst``.

    Raises
    ------
    TypeError
        ``cipher`` is not a cipher.
    CipherError
        A page of ``part`` does not authenticate (the part was changed).
    """
    check_cipher(cipher, ("encrypt_file",))
    part.flush()
    part.seek(0)
    return cipher.encrypt_file(part, dst)
