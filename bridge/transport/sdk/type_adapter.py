"""One ``TypeAdapter`` (issue 14).

dify_plugin 0.10.2's line readers (stdio, TCP, and the HTTP backwards-invocation reader) build
``TypeAdapter(dict[str, Any])`` afresh for every line they parse — a schema build costing
~15-20x the parse itself. Where the SDK is exactly 0.10.2 and the module still names pydantic's
``TypeAdapter``, that name is replaced by a factory that returns one cached adapter for
``dict[str, Any]`` (validation is identical; adapters are immutable and thread-safe) and a fresh
``TypeAdapter`` for anything else.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from bridge.transport.sdk.verify import (
    verified_modules,
)

LINE_READER_MODULES = (
    "dify_plugin.core.server.stdio.request_reader",
    "dify_plugin.core.server.tcp.request_reader",
    "dify_plugin.core.runtime",
)


_DICT_OF_ANY = dict[str, Any]
_DICT_ADAPTER: TypeAdapter[dict[str, Any]] = TypeAdapter(_DICT_OF_ANY)


def cached_type_adapter(type_: Any, *args: Any, **kwargs: Any) -> TypeAdapter[Any]:
    """``TypeAdapter(type_, ...)``, built once for the ``dict[str, Any]`` of every line."""
    if not args and not kwargs and type_ == _DICT_OF_ANY:
        return _DICT_ADAPTER
    return TypeAdapter(type_, *args, **kwargs)


def install_type_adapter(version: str | None = None) -> bool:
    modules = verified_modules(version, *LINE_READER_MODULES)
    if modules is None or any(
        getattr(module, "TypeAdapter", None) not in (TypeAdapter, cached_type_adapter)
        for module in modules
    ):
        return False
    for module in modules:
        module.TypeAdapter = cached_type_adapter
    return True
