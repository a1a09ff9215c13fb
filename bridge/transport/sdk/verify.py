"""Which SDK a seam was verified on: the SDK's version, its modules and the digests of the
sources a seam relies on (a changed SDK keeps its own code).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import textwrap
from typing import Any

VERIFIED_SDK = "0.10.2"
RUNTIME_MODULE = "dify_plugin.core.runtime"  # sessions and their backwards invocations


def sdk_version() -> str:
    try:
        return importlib.metadata.version("dify_plugin")
    except importlib.metadata.PackageNotFoundError:
        return ""


def verified_modules(version: str | None, *names: str) -> list[Any] | None:
    """The named SDK modules — or None unless the SDK is the verified version and has them."""
    if (version or sdk_version()) != VERIFIED_SDK:
        return None
    try:
        return [importlib.import_module(name) for name in names]
    except ImportError:
        return None


def source_of(function: Any) -> str:
    """A function's source ("" when it has none)."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def source_digest(function: Any) -> str:
    """The SHA-256 of a function's dedented source ("" when it has none)."""
    source = source_of(function)
    return hashlib.sha256(textwrap.dedent(source).encode()).hexdigest() if source else ""


def sources_match(expected: dict[str, str], functions: dict[str, Any]) -> bool:
    """Whether each named function's :func:`source_digest` is the one ``expected`` names."""
    return {name: source_digest(function) for name, function in functions.items()} == expected
