"""Seams into the plugin SDK (``dify_plugin``), each checked before use so that an SDK that
changed under it keeps its own behaviour. ``main.py`` calls :func:`install` before it builds
the ``Plugin``; ``tests/unit/test_sdk_seams.py`` pins each seam to the SDK it was verified on.

Unparseable requests (issue 10). ``PluginExecutor.invoke_endpoint`` turns the daemon's raw
HTTP bytes into a werkzeug ``Request`` with ``deserialize_request`` *before* any endpoint
runs; what it raises (a non-UTF-8 header byte, two ``Content-Type`` headers, a ``Host`` of
``a:b``, an ``_`` in a header name, ambiguous framing…) becomes a session error that the
daemon writes, traceback and all, into a 500. Here ``deserialize_request`` (as the executor's
module sees it) marks its failures as :class:`UnparseableRequest` — still a ``ValueError``
— and ``invoke_endpoint`` answers those with Dify's ``400 invalid_param``. Any other failure
raised out of the executor becomes a plain 500 before the first message, or ends the body
after it: logged by exception type, never a traceback in a response. Both wrappers only
surround the SDK's own code, so they hold for any SDK with the same two names.

One ``TypeAdapter`` (issue 14). dify_plugin 0.10.2's line readers (stdio, TCP, and the HTTP
backwards-invocation reader) build ``TypeAdapter(dict[str, Any])`` afresh for every line they
parse — a schema build costing ~15-20x the parse itself. Where the SDK is exactly 0.10.2 and
the module still names pydantic's ``TypeAdapter``, that name is replaced by a factory that
returns one cached adapter for ``dict[str, Any]`` (validation is identical; adapters are
immutable and thread-safe) and a fresh ``TypeAdapter`` for anything else.
"""

from __future__ import annotations

import binascii
import functools
import importlib
import importlib.metadata
import json
import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any

from pydantic import TypeAdapter

logger = logging.getLogger(__name__)

VERIFIED_SDK = "0.10.2"
EXECUTOR_MODULE = "dify_plugin.core.plugin_executor"
LINE_READER_MODULES = (
    "dify_plugin.core.server.stdio.request_reader",
    "dify_plugin.core.server.tcp.request_reader",
    "dify_plugin.core.runtime",
)
BAD_REQUEST_MESSAGE = "The HTTP request is malformed (request line, header or body framing)."

_installed: dict[str, bool] = {}


class UnparseableRequest(ValueError):
    """The daemon's raw HTTP request could not be parsed by the SDK."""


def sdk_version() -> str:
    try:
        return importlib.metadata.version("dify_plugin")
    except importlib.metadata.PackageNotFoundError:
        return ""


def install() -> dict[str, bool]:
    """Install every seam whose preconditions hold; which ones are active, by name."""
    if not _installed:
        _installed["unparseable_requests"] = _install_request_seam()
        _installed["cached_type_adapter"] = _install_type_adapter()
    return dict(_installed)


# -- unparseable requests ------------------------------------------------------------------


def _json_message(status: int, code: str, message: str) -> dict[str, object]:
    """An ``invoke_endpoint`` message: a whole response in Dify's error format."""
    body = json.dumps({"code": code, "message": message, "status": status}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return {"status": status, "headers": headers, "result": body.hex()}


def _marking(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    @functools.wraps(parse)
    def deserialize_request(raw_data: bytes) -> Any:
        try:
            return parse(raw_data)
        except Exception as exc:  # whatever the parser raises, the request is at fault
            raise UnparseableRequest(type(exc).__name__) from exc

    deserialize_request.__bridge_seam__ = True  # type: ignore[attr-defined]
    return deserialize_request


def _answering(invoke: Callable[..., Iterator[dict]]) -> Callable[..., Iterator[dict]]:
    @functools.wraps(invoke)
    def invoke_endpoint(self: Any, session: Any, data: Any) -> Generator[dict, None, None]:
        messages = invoke(self, session, data)
        started = False
        try:
            for message in messages:
                started = True
                yield message
        except Exception as exc:  # noqa: BLE001 - no traceback may reach the caller
            if not started and isinstance(exc, UnparseableRequest | binascii.Error):
                cause = exc.__cause__ or exc
                logger.warning("unparseable endpoint request refused: %s", type(cause).__name__)
                yield _json_message(400, "invalid_param", BAD_REQUEST_MESSAGE)
            else:
                logger.error("endpoint request failed in the SDK: %s", type(exc).__name__)  # noqa: TRY400
                if not started:
                    yield _json_message(500, "internal_server_error", "Internal Server Error.")
        finally:
            close = getattr(messages, "close", None)
            if close is not None:
                close()

    invoke_endpoint.__bridge_seam__ = True  # type: ignore[attr-defined]
    return invoke_endpoint


def _install_request_seam(module_name: str = EXECUTOR_MODULE) -> bool:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    executor = getattr(module, "PluginExecutor", None)
    parse = getattr(module, "deserialize_request", None)
    invoke = getattr(executor, "invoke_endpoint", None)
    if not callable(parse) or not callable(invoke):
        logger.warning("dify_plugin %s: request parsing seam not found", sdk_version())
        return False
    if getattr(invoke, "__bridge_seam__", False):
        return True
    module.deserialize_request = _marking(parse)  # type: ignore[attr-defined]
    executor.invoke_endpoint = _answering(invoke)  # type: ignore[union-attr]
    return True


# -- one TypeAdapter per process -----------------------------------------------------------

_DICT_OF_ANY = dict[str, Any]
_DICT_ADAPTER: TypeAdapter[dict[str, Any]] = TypeAdapter(_DICT_OF_ANY)


def cached_type_adapter(type_: Any, *args: Any, **kwargs: Any) -> TypeAdapter[Any]:
    """``TypeAdapter(type_, ...)``, built once for the ``dict[str, Any]`` of every line."""
    if not args and not kwargs and type_ == _DICT_OF_ANY:
        return _DICT_ADAPTER
    return TypeAdapter(type_, *args, **kwargs)


def _install_type_adapter(version: str | None = None) -> bool:
    if (version or sdk_version()) != VERIFIED_SDK:
        return False
    modules = []
    for name in LINE_READER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            return False
        if getattr(module, "TypeAdapter", None) not in (TypeAdapter, cached_type_adapter):
            return False
        modules.append(module)
    for module in modules:
        module.TypeAdapter = cached_type_adapter  # type: ignore[attr-defined]
    return True
