"""Sign ``.difypkg`` files the way Dify's CLI does (``dify signature generate`` / ``sign``).

What the daemon checks (dify-plugin-daemon ``pkg/plugin_packager/decoder/verifier.go``,
``signer/withkey/sign_with_key.go``, ``pkg/utils/encryption/rsa.go``):

- the signed data is the SHA-256 digest of every zip entry's content, in the order of the
  zip's central directory, then the decimal Unix time of signing;
- the signature is RSA PKCS#1 v1.5 over SHA-256 of that data, made with a PKCS#1 PEM key
  (``RSA PRIVATE KEY``; the daemon loads ``RSA PUBLIC KEY`` PEMs);
- the zip comment is ``{"signature": <base64>, "time": <unix seconds>}``;
- ``.verification.dify.json`` (``{"authorized_category": …}``) is written as the last entry
  and is hashed like every other entry.

Usage::

    python -m devkit.signing keygen [NAME]          # NAME.private.pem + NAME.public.pem
    python -m devkit.signing sign PKG KEY.private.pem [--category community]

``./dev keygen`` and ``./dev package --sign KEY`` call these. The category defaults to
``community``: the CLI's own default, ``langgenius``, claims Dify's authorship.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

VERIFICATION_FILE = ".verification.dify.json"
CATEGORIES = ("community", "partner", "langgenius")
KEY_BITS = 4096
DEFAULT_KEY_NAME = "app_bridge_signing_key"


class SigningError(Exception):
    """Signing was refused; the message says why."""


def generate_key_pair(name: str | Path = DEFAULT_KEY_NAME) -> tuple[Path, Path]:
    """Write ``NAME.private.pem`` (mode 0600) and ``NAME.public.pem``; return both paths.

    Same formats as ``dify signature generate``: RSA-4096, PKCS#1 PEM for both keys.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "RSA PRIVATE KEY" (PKCS#1)
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    private_path = Path(f"{name}.private.pem")
    public_path = Path(f"{name}.public.pem")
    for path in (private_path, public_path):
        if path.exists():
            raise SigningError(f"{path} already exists; choose another name or move it away")
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """A PKCS#1 ``RSA PRIVATE KEY`` PEM, as the CLI requires."""
    if b"-----BEGIN RSA PRIVATE KEY-----" not in pem:
        raise SigningError(
            "the key must be an unencrypted PKCS#1 PEM ('BEGIN RSA PRIVATE KEY'), "
            "as made by './dev keygen' or 'dify signature generate'"
        )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"cannot load the private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SigningError("the private key is not an RSA key")
    return key


def signed_data(entries: list[bytes], signed_at: int) -> bytes:
    """What the signature covers: each entry's SHA-256, then the time as decimal text."""
    return b"".join(hashlib.sha256(entry).digest() for entry in entries) + str(signed_at).encode()


def sign_package(
    package: bytes,
    private_key_pem: bytes,
    *,
    category: str = "community",
    signed_at: int | None = None,
) -> bytes:
    """Return the signed package: same entries in the same order, the verification file
    last, and the signature in the zip comment."""
    if category not in CATEGORIES:
        raise SigningError(f"category must be one of: {', '.join(CATEGORIES)}")
    key = load_private_key(private_key_pem)
    try:
        source = zipfile.ZipFile(io.BytesIO(package))
    except zipfile.BadZipFile:
        raise SigningError("not a .difypkg (zip) file") from None
    entries: list[bytes] = []
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename == VERIFICATION_FILE:
                raise SigningError("the package is already signed")
            content = source.read(info)
            entries.append(content)
            target.writestr(_copy_info(info), content)
        verification = json.dumps({"authorized_category": category}, separators=(",", ":"))
        entries.append(verification.encode())
        target.writestr(
            _copy_info(zipfile.ZipInfo(VERIFICATION_FILE, (1980, 1, 1, 0, 0, 0))), verification
        )
        when = int(time.time()) if signed_at is None else signed_at
        signature = key.sign(signed_data(entries, when), padding.PKCS1v15(), hashes.SHA256())
        target.comment = json.dumps(
            {"signature": base64.b64encode(signature).decode(), "time": when},
            separators=(",", ":"),
        ).encode()
    return out.getvalue()


def _copy_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.compress_type = zipfile.ZIP_DEFLATED
    copy.create_system = 3
    copy.external_attr = info.external_attr or (0o100644 << 16)
    return copy


def signed_path(package: Path) -> Path:
    """``name.difypkg`` → ``name.signed.difypkg`` (the CLI's naming)."""
    return package.with_name(f"{package.stem}.signed{package.suffix}")


def sign_file(package: Path, private_key: Path, *, category: str = "community") -> Path:
    """Sign ``package`` into ``<name>.signed.difypkg`` next to it; return that path."""
    try:
        data, pem = package.read_bytes(), private_key.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read {exc.filename}: {exc.strerror}") from None
    target = signed_path(package)
    temp = target.with_name(f".{target.name}.tmp")
    try:
        temp.write_bytes(sign_package(data, pem, category=category))
        temp.replace(target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m devkit.signing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="make an RSA-4096 key pair")
    keygen.add_argument("name", nargs="?", default=DEFAULT_KEY_NAME, help="file name prefix")
    sign = commands.add_parser("sign", help="sign a .difypkg into <name>.signed.difypkg")
    sign.add_argument("package", type=Path)
    sign.add_argument("private_key", type=Path)
    sign.add_argument("--category", choices=CATEGORIES, default="community")
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            private_path, public_path = generate_key_pair(args.name)
            print(f"private key: {private_path}  (keep it secret; sign with it)")
            print(f"public key:  {public_path}  (give it to the Dify admin)")
        else:
            print(sign_file(args.package, args.private_key, category=args.category))
    except SigningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
