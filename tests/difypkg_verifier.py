"""Test-only: the daemon's signature check, re-implemented independently of the signer.

Written from dify-plugin-daemon's ``VerifyPluginWithPublicKeys``
(``pkg/plugin_packager/decoder/verifier.go``), ``ZipPluginDecoder.Walk``/``decode``
(``decoder/zip.go``) and ``encryption.LoadPublicKey``/``VerifySign``
(``pkg/utils/encryption/rsa.go``). It shares no code with :mod:`devkit.signing` and uses no
crypto library: the PKCS#1 public key is parsed from its DER by hand and RSASSA-PKCS1-v1_5
is checked with integer arithmetic (RFC 8017 §8.2.2, EMSA-PKCS1-v1_5 with SHA-256).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import zipfile
import zlib

# RFC 8017 §9.2 note 1: DER of DigestInfo for SHA-256, before the 32-byte hash.
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class VerificationFailed(Exception):
    pass


def _der_read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    if pos >= len(data) or data[pos] != tag:
        raise VerificationFailed(f"DER: expected tag {tag:#x} at {pos}")
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        length, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
    if pos + length > len(data):
        raise VerificationFailed("DER: truncated")
    return data[pos : pos + length], pos + length


def load_public_key(pem: bytes) -> tuple[int, int]:
    """``(n, e)`` from an ``RSA PUBLIC KEY`` PEM; like Go's LoadPublicKey, nothing after it."""
    text = pem.decode("ascii").strip()
    begin, end = "-----BEGIN RSA PUBLIC KEY-----", "-----END RSA PUBLIC KEY-----"
    if not (text.startswith(begin) and text.endswith(end)):
        raise VerificationFailed("failed to decode PEM block containing public key")
    try:
        der = base64.b64decode("".join(text[len(begin) : -len(end)].split()), validate=True)
    except binascii.Error as exc:
        raise VerificationFailed("bad base64 in PEM") from exc
    body, _ = _der_read(der, 0, 0x30)
    modulus, pos = _der_read(body, 0, 0x02)
    exponent, _ = _der_read(body, pos, 0x02)
    return int.from_bytes(modulus, "big"), int.from_bytes(exponent, "big")


def rsa_pkcs1v15_sha256_verify(key: tuple[int, int], message: bytes, signature: bytes) -> None:
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        raise VerificationFailed("crypto/rsa: verification error (length)")
    s = int.from_bytes(signature, "big")
    if s >= n:
        raise VerificationFailed("crypto/rsa: verification error (range)")
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    if em != expected:
        raise VerificationFailed("crypto/rsa: verification error")


def verify_package(package: bytes, public_keys: list[bytes]) -> dict:
    """Raise :class:`VerificationFailed` unless one key verifies; return the comment data."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(package))
    except zipfile.BadZipFile as exc:
        raise VerificationFailed("not a difypkg") from exc
    with archive:
        # Walk: every central-directory entry in order; ReadFile of its content.
        try:
            data = b"".join(
                hashlib.sha256(archive.read(info)).digest() for info in archive.infolist()
            )
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise VerificationFailed("cannot read an entry") from exc
        try:
            comment = json.loads(archive.comment.decode() or "null")
        except (UnicodeDecodeError, ValueError) as exc:
            raise VerificationFailed("zip comment is not JSON") from exc
    if not isinstance(comment, dict):
        raise VerificationFailed("no signature in the zip comment")
    signature, created_at = comment.get("signature"), comment.get("time")
    if not isinstance(signature, str) or not isinstance(created_at, int):
        raise VerificationFailed("no signature in the zip comment")
    data += str(created_at).encode()
    try:
        signature_bytes = base64.b64decode(signature, validate=True)
    except binascii.Error as exc:
        raise VerificationFailed("signature is not base64") from exc
    last: VerificationFailed | None = None
    for pem in public_keys:
        try:
            rsa_pkcs1v15_sha256_verify(load_public_key(pem), data, signature_bytes)
            return comment
        except VerificationFailed as exc:
            last = exc
    raise last or VerificationFailed("no public key")
