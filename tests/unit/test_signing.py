"""Signed packages (devkit.signing) against an independent copy of the daemon's check."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from devkit import package as package_cli
from devkit.package import build_package
from devkit.signing import (
    VERIFICATION_FILE,
    SigningError,
    generate_key_pair,
    sign_package,
    signed_path,
)
from tests.difypkg_verifier import VerificationFailed, verify_package

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[Path, Path]:
    return generate_key_pair(tmp_path_factory.mktemp("keys") / "test")


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory) -> Path:
    return build_package(REPO_ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def signed(unsigned, keys) -> bytes:
    return sign_package(unsigned.read_bytes(), keys[0].read_bytes(), signed_at=1_790_000_000)


def rezip(package: bytes, *, change: str | None = None, comment: bytes | None = None) -> bytes:
    """The same archive with one byte of entry ``change`` flipped and/or another comment."""
    source = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = bytearray(source.read(info))
            if info.filename == change:
                content[len(content) // 2] ^= 0x01
            target.writestr(info, bytes(content))
        target.comment = source.comment if comment is None else comment
    return out.getvalue()


def test_keygen_writes_pkcs1_pems_and_keeps_the_private_one_private(keys):
    private, public = keys
    assert private.name == "test.private.pem" and public.name == "test.public.pem"
    assert private.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert public.read_text().startswith("-----BEGIN RSA PUBLIC KEY-----\n")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    with pytest.raises(SigningError, match="already exists"):
        generate_key_pair(private.parent / "test")


def test_signed_package_verifies_with_the_daemons_check(signed, unsigned, keys):
    comment = verify_package(signed, [keys[1].read_bytes()])
    assert set(comment) == {"signature", "time"} and comment["time"] == 1_790_000_000
    assert len(base64.b64decode(comment["signature"])) == 512  # RSA-4096
    with zipfile.ZipFile(io.BytesIO(signed)) as archive, zipfile.ZipFile(unsigned) as original:
        names = [info.filename for info in archive.infolist()]
        assert names == [info.filename for info in original.infolist()] + [VERIFICATION_FILE]
        assert all(archive.read(n) == original.read(n) for n in names[:-1])
        assert json.loads(archive.read(VERIFICATION_FILE)) == {"authorized_category": "community"}
        assert archive.comment == json.dumps(comment, separators=(",", ":")).encode()


@pytest.mark.parametrize("entry", ["manifest.yaml", "main.py", "README.md", VERIFICATION_FILE])
def test_one_changed_byte_in_any_entry_fails(signed, keys, entry):
    with pytest.raises(VerificationFailed):
        verify_package(rezip(signed, change=entry), [keys[1].read_bytes()])


def test_changed_time_or_signature_or_wrong_key_fails(signed, keys, tmp_path):
    public = [keys[1].read_bytes()]
    comment = json.loads(zipfile.ZipFile(io.BytesIO(signed)).comment)
    later = json.dumps({**comment, "time": comment["time"] + 1}, separators=(",", ":"))
    with pytest.raises(VerificationFailed):
        verify_package(rezip(signed, comment=later.encode()), public)
    raw = bytearray(base64.b64decode(comment["signature"]))
    raw[100] ^= 0x80
    forged = json.dumps({**comment, "signature": base64.b64encode(bytes(raw)).decode()})
    with pytest.raises(VerificationFailed):
        verify_package(rezip(signed, comment=forged.encode()), public)
    other = generate_key_pair(tmp_path / "other")[1].read_bytes()
    with pytest.raises(VerificationFailed):
        verify_package(signed, [other])
    assert verify_package(signed, [other, *public])  # the daemon tries every key


def test_unsigned_stays_the_default_and_fails_the_check(unsigned, keys):
    with zipfile.ZipFile(unsigned) as archive:
        assert archive.comment == b""
        assert VERIFICATION_FILE not in archive.namelist()
    with pytest.raises(VerificationFailed):
        verify_package(unsigned.read_bytes(), [keys[1].read_bytes()])


def test_package_sign_cli_writes_both_files(tmp_path, keys, capsys):
    assert package_cli.main(["--out", str(tmp_path), "--sign", str(keys[0])]) == 0
    printed = capsys.readouterr().out.split()
    unsigned, signed = Path(printed[0]), Path(printed[1])
    assert signed == signed_path(unsigned) and signed.name.endswith(".signed.difypkg")
    verify_package(signed.read_bytes(), [keys[1].read_bytes()])
    with pytest.raises(VerificationFailed):
        verify_package(unsigned.read_bytes(), [keys[1].read_bytes()])


def test_refusals_are_one_clear_line(tmp_path, unsigned, keys, capsys):
    pkcs8 = tmp_path / "pkcs8.pem"
    pkcs8.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert package_cli.main(["--out", str(tmp_path), "--sign", str(pkcs8)]) == 1
    assert "PKCS#1" in capsys.readouterr().err
    assert package_cli.main(["--out", str(tmp_path), "--sign", str(tmp_path / "none.pem")]) == 1
    assert "cannot read" in capsys.readouterr().err
    signed = sign_package(unsigned.read_bytes(), keys[0].read_bytes())
    with pytest.raises(SigningError, match="already signed"):
        sign_package(signed, keys[0].read_bytes())
    assert not any(name.endswith(".pem") for name in zipfile.ZipFile(unsigned).namelist())
    assert os.path.basename(str(unsigned)).endswith(".difypkg")
