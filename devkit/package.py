"""Build ``<name>-<version>.difypkg`` the way ``dify plugin package`` does.

Usage: ``python -m devkit.package [--root DIR] [--out DIR] [--max-size-mb 50] [--boot]
[--sign KEY.private.pem [--category community]]``. With ``--sign`` it also writes
``<name>-<version>.signed.difypkg``, as ``dify signature sign`` would (:mod:`devkit.signing`).
Ignore rules come from ``.difyignore`` (gitignore syntax), falling back to ``.gitignore``;
there are no built-in exclusions. The zip is reproducible: sorted entries, fixed timestamps.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pathspec

from devkit.check import DEFAULT_ROOT, run_checks
from devkit.signing import CATEGORIES, SigningError, sign_file

IGNORE_FILES = (".difyignore", ".gitignore")
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
MIB = 1024 * 1024
LARGEST_SHOWN = 5


class PackageError(Exception):
    """Packaging was refused; the message says why."""


def load_ignore_spec(root: Path) -> pathspec.GitIgnoreSpec:
    """Rules from ``.difyignore``, else ``.gitignore``, else none."""
    for name in IGNORE_FILES:
        path = Path(root) / name
        if path.is_file():
            return pathspec.GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8").splitlines())
    return pathspec.GitIgnoreSpec.from_lines([])


def collect_files(root: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Files to package, relative to ``root``, sorted by POSIX path; ``exclude`` is skipped."""
    root = Path(root).resolve()
    spec = load_ignore_spec(root)
    skipped = {Path(path).resolve() for path in exclude}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        prefix = base.relative_to(root).as_posix() + "/" if base != root else ""
        dirnames[:] = [name for name in dirnames if not spec.match_file(f"{prefix}{name}/")]
        for name in filenames:
            path = base / name
            if spec.match_file(prefix + name) or path.resolve() in skipped or not path.is_file():
                continue
            found.append(path.relative_to(root))
    return sorted(found, key=Path.as_posix)


def build_package(
    root: Path, out_dir: Path, max_size_mb: float = 50, *, boot: bool = False
) -> Path:
    """Check the plugin, then write the package into ``out_dir``; return its path."""
    root = Path(root).resolve()
    result = run_checks(root, boot=boot)
    if result.problems:
        listed = "\n".join(f"  - {problem}" for problem in result.problems)
        raise PackageError(f"plugin checks failed:\n{listed}")
    target = Path(out_dir).resolve() / _package_name(result.manifest)
    files = collect_files(root, exclude=[target])
    _require_declared(result.referenced, files)
    _enforce_size(root, files, max_size_mb)
    _write_zip(root, files, target)
    return target


def _package_name(manifest: dict[str, object]) -> str:
    return f"{manifest['name']}-{manifest['version']}.difypkg"


def _require_declared(referenced: Iterable[str], files: list[Path]) -> None:
    """Refuse when ignore rules drop a file the manifest or its declarations need."""
    packaged = {path.as_posix() for path in files}
    missing = sorted(set(referenced) - packaged)
    if missing:
        raise PackageError("ignore rules exclude files the plugin needs: " + ", ".join(missing))


def _enforce_size(root: Path, files: list[Path], max_size_mb: float) -> None:
    """Refuse when the uncompressed total exceeds the limit; list the largest files."""
    sizes = [((root / path).stat().st_size, path.as_posix()) for path in files]
    total = sum(size for size, _ in sizes)
    if total <= max_size_mb * MIB:
        return
    largest = sorted(sizes, key=lambda item: (-item[0], item[1]))[:LARGEST_SHOWN]
    listed = "\n".join(f"  {size / MIB:10.2f} MB  {name}" for size, name in largest)
    raise PackageError(
        f"plugin is {total / MIB:.2f} MB uncompressed, above the {max_size_mb:g} MB limit; "
        f"largest files:\n{listed}"
    )


def _write_zip(root: Path, files: list[Path], target: Path) -> None:
    """Write a deflated zip with fixed metadata atomically (temp file, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    try:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                _add_entry(archive, root / path, path.as_posix())
        temp.replace(target)
    finally:
        temp.unlink(missing_ok=True)


def _add_entry(archive: zipfile.ZipFile, source: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever the host
    mode = 0o755 if os.access(source, os.X_OK) else 0o644
    info.external_attr = (0o100000 | mode) << 16
    with source.open("rb") as reader, archive.open(info, "w") as writer:
        shutil.copyfileobj(reader, writer)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m devkit.package", description=__doc__)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="plugin root")
    parser.add_argument("--out", type=Path, default=None, help="output dir (default ROOT/dist)")
    parser.add_argument("--max-size-mb", type=float, default=50, help="uncompressed limit")
    parser.add_argument("--boot", action="store_true", help="also boot the plugin first")
    parser.add_argument(
        "--sign", type=Path, metavar="KEY", help="also write a copy signed with this private key"
    )
    parser.add_argument(
        "--category", choices=CATEGORIES, default="community", help="authorized_category"
    )
    args = parser.parse_args(argv)
    out_dir = args.out if args.out is not None else args.root / "dist"
    try:
        target = build_package(args.root, out_dir, args.max_size_mb, boot=args.boot)
        print(target)
        if args.sign is not None:
            print(sign_file(target, args.sign, category=args.category))
    except (PackageError, SigningError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
